"""Routing policy versions in the NATS key-value bucket ``ROUTING_POLICY``.

Versions are kept as every policy is (``civicgrid.events.policy_versions``): key ``v<N>``
written once, ``current`` moved forward only; incidents in flight keep the version they
started with.

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

import yaml
from nats.js import JetStreamContext

from civicgrid.events.policy_versions import (
    CURRENT_KEY,
    PolicyMissing,
    PolicyVersionConflict,
    PolicyVersions,
    version_key,
)
from civicgrid.events.policy_versions import PolicyBook as GenericPolicyBook
from civicgrid.events.streams import ROUTING_POLICY_BUCKET
from civicgrid.routing.domain.city import CityMap
from civicgrid.routing.domain.policy import RoutingPolicy
from civicgrid.servicekit.seeds import NatsSeeds


async def publish_policy(
    js: JetStreamContext, policy: RoutingPolicy, *, bucket: str = ROUTING_POLICY_BUCKET
) -> int:
    """Store ``policy`` as its version and make it current; returns the current version after."""
    return await _versions(bucket).publish(js, policy)


async def seed_policy(
    js: JetStreamContext, policy: RoutingPolicy, *, bucket: str = ROUTING_POLICY_BUCKET
) -> int:
    """At start: publish the configured policy if the bucket has none; returns current."""
    return await _versions(bucket).seed(js, policy)


class PolicyBook(GenericPolicyBook[RoutingPolicy]):
    """What routing reads: any version by number, and the current one within ``refresh_s``."""

    def __init__(
        self,
        jetstream: Callable[[], JetStreamContext],
        *,
        bucket: str = ROUTING_POLICY_BUCKET,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(_versions(bucket), jetstream, refresh_s=refresh_s, clock=clock)


def _versions(bucket: str) -> PolicyVersions[RoutingPolicy]:
    return PolicyVersions(RoutingPolicy.model_validate_json, bucket=bucket, what="routing policy")


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


__all__ = [
    "CURRENT_KEY",
    "PolicyBook",
    "PolicyMissing",
    "PolicyVersionConflict",
    "publish_policy",
    "seed_policy",
    "version_key",
]
