"""Routing policy versions in the NATS key-value bucket ``ROUTING_POLICY``.

Key ``v<N>`` holds version N (written once, never changed: incidents in flight keep deciding
with it); key ``current`` holds the number of the version new incidents start with. Publishing
writes the version first and then moves ``current`` forward, never backward.

    python -m civicgrid.routing.policy publish new-routing.yaml --nats nats://admin:...@host:4222
    python -m civicgrid.routing.policy show --nats ...
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
import yaml
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from civicgrid.events.streams import ROUTING_POLICY_BUCKET
from civicgrid.routing.domain.city import CityMap
from civicgrid.routing.domain.policy import RoutingPolicy
from civicgrid.servicekit.seeds import NatsSeeds

log = structlog.get_logger("civicgrid.routing.policy")

CURRENT_KEY = "current"

KeyValue = Any  # nats.js.kv.KeyValue; nats-py ships no type information


class PolicyVersionConflict(Exception):
    """A version number already stands for other rules, or is older than the current one."""


class PolicyMissing(Exception):
    """A version an incident needs is not in the bucket."""


def version_key(version: int) -> str:
    return f"v{version}"


async def publish_policy(
    js: JetStreamContext, policy: RoutingPolicy, *, bucket: str = ROUTING_POLICY_BUCKET
) -> int:
    """Store ``policy`` as its version and make it current; returns the current version after.

    Publishing the same rules under the same version again is a no-op, so a retry is safe.
    """
    kv = await js.key_value(bucket)
    version = policy.policy_version
    stored = await _read_version(kv, version)
    if stored is None:
        current = await _current_number(kv)
        if current is not None and version < current:
            raise PolicyVersionConflict(
                f"version {version} is older than the current {current}: publish {current + 1}"
            )
        try:
            await kv.create(version_key(version), policy.model_dump_json().encode())
        except KeyWrongLastSequenceError:
            stored = await _read_version(kv, version)
    if stored is not None and stored != policy:
        raise PolicyVersionConflict(
            f"version {version} is already published with other rules; versions never change:"
            " publish a new version number"
        )
    return await _advance_current(kv, version)


async def seed_policy(
    js: JetStreamContext, policy: RoutingPolicy, *, bucket: str = ROUTING_POLICY_BUCKET
) -> int:
    """At start: publish the configured policy if the bucket has none; returns current."""
    kv = await js.key_value(bucket)
    current = await _current_number(kv)
    if current is not None:
        if current != policy.policy_version:
            log.info(
                "routing_policy_kept",
                current=current,
                configured=policy.policy_version,
                hint="publish a new version with python -m civicgrid.routing.policy publish",
            )
        return current
    current = await publish_policy(js, policy, bucket=bucket)
    log.info("routing_policy_seeded", version=current)
    return current


async def _read_version(kv: KeyValue, version: int) -> RoutingPolicy | None:
    try:
        entry = await kv.get(version_key(version))
    except KeyNotFoundError:
        return None
    return RoutingPolicy.model_validate_json(entry.value)


async def _current_number(kv: KeyValue) -> int | None:
    try:
        entry = await kv.get(CURRENT_KEY)
    except KeyNotFoundError:
        return None
    return int(entry.value)


async def _advance_current(kv: KeyValue, version: int) -> int:
    while True:
        try:
            entry = await kv.get(CURRENT_KEY)
        except KeyNotFoundError:
            try:
                await kv.create(CURRENT_KEY, str(version).encode())
            except KeyWrongLastSequenceError:
                continue
            return version
        current = int(entry.value)
        if current >= version:
            return current
        try:
            await kv.update(CURRENT_KEY, str(version).encode(), last=entry.revision)
        except KeyWrongLastSequenceError:
            continue
        return version


class PolicyBook:
    """What routing reads: any version by number (cached for ever, versions never change) and
    the current one (re-read at most every ``refresh_s``, so a publish takes effect within it).
    """

    def __init__(
        self,
        jetstream: Callable[[], JetStreamContext],
        *,
        bucket: str = ROUTING_POLICY_BUCKET,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._jetstream = jetstream
        self._bucket = bucket
        self._refresh_s = refresh_s
        self._clock = clock
        self._kv: KeyValue | None = None
        self._versions: dict[int, RoutingPolicy] = {}
        self._current: RoutingPolicy | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def last_seen(self) -> RoutingPolicy | None:
        """The current version as last read; None until the first read."""
        return self._current

    async def current(self) -> RoutingPolicy:
        if self._current is not None and self._clock() - self._checked_at < self._refresh_s:
            return self._current
        async with self._lock:
            if self._current is not None and self._clock() - self._checked_at < self._refresh_s:
                return self._current
            try:
                number = await _current_number(await self._bucket_handle())
                if number is None:
                    raise PolicyMissing(f"no current routing policy in {self._bucket}")
                self._current = await self.version(number)
                self._checked_at = self._clock()
            except Exception as exc:
                if self._current is None:
                    raise
                # A hiccup on the bus must not stop routing: the last version read is at most
                # one refresh old.
                log.warning("routing_policy_refresh_failed", error=str(exc))
            return self._current

    async def version(self, number: int) -> RoutingPolicy:
        cached = self._versions.get(number)
        if cached is not None:
            return cached
        policy = await _read_version(await self._bucket_handle(), number)
        if policy is None:
            raise PolicyMissing(
                f"routing policy version {number} is not in {self._bucket}; every version an"
                " incident started with must stay there"
            )
        self._versions[number] = policy
        return policy

    async def _bucket_handle(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._jetstream().key_value(self._bucket)
        return self._kv


def read_policy_file(path: Path) -> RoutingPolicy:
    """A policy as YAML: routing.yaml's keys, optionally ``matter_overrides`` and ``note``."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return RoutingPolicy.model_validate(data)


def problems_with(policy: RoutingPolicy, city: CityMap) -> list[str]:
    """Overrides that name matters, units or SLA classes the city does not have."""
    problems: list[str] = []
    for code, override in policy.matter_overrides.items():
        if city.matter(code) is None:
            problems.append(f"matter_overrides: no matter {code!r}")
        named = (
            ([override.lead_unit] if override.lead_unit else [])
            + list(override.supporting_units or ())
            + list(override.fallback_units or ())
        )
        problems += [
            f"matter_overrides.{code}: no unit {unit_id!r}"
            for unit_id in named
            if city.unit(unit_id) is None
        ]
        if override.sla_class is not None and override.sla_class not in city.sla_classes:
            problems.append(f"matter_overrides.{code}: no SLA class {override.sla_class!r}")
    return problems


async def _main(args: argparse.Namespace) -> int:
    import nats

    from civicgrid.routing.config import load_city_map

    nc = await nats.connect(**NatsSeeds.parse(args.nats).connect_options())
    try:
        js = nc.jetstream()
        if args.command == "publish":
            policy = read_policy_file(args.file)
            problems = problems_with(policy, load_city_map(args.config))
            if problems:
                print("\n".join(f"{args.file}: {p}" for p in problems), file=sys.stderr)
                return 2
            current = await publish_policy(js, policy, bucket=args.bucket)
            print(f"published version {policy.policy_version}; current is {current}")
            return 0
        book = PolicyBook(lambda: js, bucket=args.bucket)
        policy = await book.current()
        print(policy.model_dump_json(indent=2))
        return 0
    finally:
        await nc.drain()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Publish or show routing policy versions.")
    parser.add_argument("command", choices=("publish", "show"))
    parser.add_argument("file", type=Path, nargs="?", help="policy YAML (for publish)")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--bucket", default=ROUTING_POLICY_BUCKET)
    parser.add_argument("--config", type=Path, default=None, help="city configuration directory")
    args = parser.parse_args(argv)
    if args.command == "publish" and args.file is None:
        parser.error("publish needs the policy file")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    raise SystemExit(main())
