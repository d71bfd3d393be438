"""SLA policy versions in the NATS key-value bucket ``SLA_POLICY`` (the shape of routing's).

Key ``v<N>`` holds version N, written once and never changed (clocks in flight keep deciding
with the version they started under); ``current`` holds the version new clocks start with.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

from civicgrid.events.streams import SLA_POLICY_BUCKET
from civicgrid.sla.domain.policy import SlaPolicyVersion

log = structlog.get_logger("civicgrid.sla.policy")

CURRENT_KEY = "current"
KeyValue = Any  # nats.js.kv.KeyValue; nats-py ships no type information


class PolicyVersionConflict(Exception):
    """A version number already stands for other rules, or is older than the current one."""


class PolicyMissing(Exception):
    """A version a clock needs is not in the bucket."""


def version_key(version: int) -> str:
    return f"v{version}"


async def publish_policy(
    js: JetStreamContext, policy: SlaPolicyVersion, *, bucket: str = SLA_POLICY_BUCKET
) -> int:
    """Store ``policy`` as its version and make it current; a retry of the same is a no-op."""
    kv = await js.key_value(bucket)
    version = policy.policy_version
    stored = await _read(kv, version)
    if stored is None:
        current = await _current(kv)
        if current is not None and version < current:
            raise PolicyVersionConflict(f"version {version} is older than the current {current}")
        try:
            await kv.create(version_key(version), policy.model_dump_json().encode())
        except KeyWrongLastSequenceError:
            stored = await _read(kv, version)
    if stored is not None and stored != policy:
        raise PolicyVersionConflict(
            f"SLA policy version {version} is already published with other rules;"
            " versions never change: publish a new version number"
        )
    while True:
        try:
            entry = await kv.get(CURRENT_KEY)
        except KeyNotFoundError:
            try:
                await kv.create(CURRENT_KEY, str(version).encode())
            except KeyWrongLastSequenceError:
                continue
            return version
        current = int(entry.value or b"0")
        if current >= version:
            return current
        try:
            await kv.update(CURRENT_KEY, str(version).encode(), last=entry.revision)
        except KeyWrongLastSequenceError:
            continue
        return version


async def seed_policy(
    js: JetStreamContext, policy: SlaPolicyVersion, *, bucket: str = SLA_POLICY_BUCKET
) -> int:
    """At start: publish the configured policy if the bucket has none; returns current."""
    current = await _current(await js.key_value(bucket))
    if current is not None:
        return current
    current = await publish_policy(js, policy, bucket=bucket)
    log.info("sla_policy_seeded", version=current)
    return current


async def _read(kv: KeyValue, version: int) -> SlaPolicyVersion | None:
    try:
        entry = await kv.get(version_key(version))
    except KeyNotFoundError:
        return None
    return SlaPolicyVersion.model_validate_json(entry.value)


async def _current(kv: KeyValue) -> int | None:
    try:
        entry = await kv.get(CURRENT_KEY)
    except KeyNotFoundError:
        return None
    return int(entry.value or b"0")


class PolicyBook:
    """Any version by number (cached for ever) and the current one (re-read every refresh_s)."""

    def __init__(
        self,
        jetstream: Callable[[], JetStreamContext],
        *,
        bucket: str = SLA_POLICY_BUCKET,
        refresh_s: float = 1.0,
    ) -> None:
        self._jetstream = jetstream
        self._bucket = bucket
        self._refresh_s = refresh_s
        self._kv: KeyValue | None = None
        self._versions: dict[int, SlaPolicyVersion] = {}
        self._current: SlaPolicyVersion | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def last_seen(self) -> SlaPolicyVersion | None:
        return self._current

    async def current(self) -> SlaPolicyVersion:
        if self._current is not None and time.monotonic() - self._checked_at < self._refresh_s:
            return self._current
        async with self._lock:
            try:
                number = await _current(await self._handle())
                if number is None:
                    raise PolicyMissing(f"no current SLA policy in {self._bucket}")
                self._current = await self.version(number)
                self._checked_at = time.monotonic()
            except Exception as exc:
                if self._current is None:
                    raise
                log.warning("sla_policy_refresh_failed", error=str(exc))
            return self._current

    async def version(self, number: int) -> SlaPolicyVersion:
        cached = self._versions.get(number)
        if cached is not None:
            return cached
        policy = await _read(await self._handle(), number)
        if policy is None:
            raise PolicyMissing(f"SLA policy version {number} is not in {self._bucket}")
        self._versions[number] = policy
        return policy

    async def for_incident(self, pinned: int | None) -> SlaPolicyVersion:
        return await self.version(pinned) if pinned is not None else await self.current()

    async def _handle(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._jetstream().key_value(self._bucket)
        return self._kv
