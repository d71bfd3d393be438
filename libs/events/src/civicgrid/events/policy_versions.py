"""Policy versions in a NATS key-value bucket: routing's and sla's rules, one mechanism.

Key ``v<N>`` holds version N, written once and never changed (incidents and clocks in flight
keep deciding with the version they started under); key ``current`` holds the number of the
version new work starts with. Publishing writes the version first, then moves ``current``
forward, never backward; publishing the same rules under the same number again is a no-op, so
a retry is safe. A service seeds the configured version at start when the bucket has none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

import structlog
from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError

log = structlog.get_logger("civicgrid.policy_versions")

CURRENT_KEY = "current"
KeyValue = Any  # nats.js.kv.KeyValue; nats-py ships no type information


class Versioned(Protocol):
    @property
    def policy_version(self) -> int: ...

    def model_dump_json(self) -> str: ...


P = TypeVar("P", bound=Versioned)


class PolicyVersionConflict(Exception):
    """A version number already stands for other rules, or is older than the current one."""


class PolicyMissing(Exception):
    """A version that work in flight needs is not in the bucket."""


def version_key(version: int) -> str:
    return f"v{version}"


class PolicyVersions(Generic[P]):
    """Publishing to, seeding and reading one bucket of versions of ``model``."""

    def __init__(self, model: Callable[[bytes], P], *, bucket: str, what: str) -> None:
        self._parse = model
        self.bucket = bucket
        self.what = what  # "routing policy", "SLA policy": for messages a person reads

    async def publish(self, js: JetStreamContext, policy: P) -> int:
        """Store ``policy`` as its version and make it current; returns current after."""
        kv = await js.key_value(self.bucket)
        version = policy.policy_version
        stored = await self.read(kv, version)
        if stored is None:
            current = await current_number(kv)
            if current is not None and version < current:
                raise PolicyVersionConflict(
                    f"{self.what} version {version} is older than the current {current}:"
                    f" publish {current + 1}"
                )
            try:
                await kv.create(version_key(version), policy.model_dump_json().encode())
            except KeyWrongLastSequenceError:
                stored = await self.read(kv, version)
        if stored is not None and stored != policy:
            raise PolicyVersionConflict(
                f"{self.what} version {version} is already published with other rules;"
                " versions never change: publish a new version number"
            )
        return await _advance_current(kv, version)

    async def seed(self, js: JetStreamContext, policy: P) -> int:
        """At start: publish the configured policy if the bucket has none; returns current."""
        current = await current_number(await js.key_value(self.bucket))
        if current is not None:
            if current != policy.policy_version:
                log.info(
                    "policy_kept", what=self.what, current=current, configured=policy.policy_version
                )
            return current
        current = await self.publish(js, policy)
        log.info("policy_seeded", what=self.what, version=current)
        return current

    async def read(self, kv: KeyValue, version: int) -> P | None:
        try:
            entry = await kv.get(version_key(version))
        except KeyNotFoundError:
            return None
        return self._parse(entry.value)


async def current_number(kv: KeyValue) -> int | None:
    try:
        entry = await kv.get(CURRENT_KEY)
    except KeyNotFoundError:
        return None
    return int(entry.value or b"0")


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
        current = int(entry.value or b"0")
        if current >= version:
            return current
        try:
            await kv.update(CURRENT_KEY, str(version).encode(), last=entry.revision)
        except KeyWrongLastSequenceError:
            continue
        return version


class PolicyBook(Generic[P]):
    """Any version by number (cached for ever: versions never change) and the current one
    (re-read at most every ``refresh_s``, so a publish takes effect within it)."""

    def __init__(
        self,
        versions: PolicyVersions[P],
        jetstream: Callable[[], JetStreamContext],
        *,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._versions = versions
        self._jetstream = jetstream
        self._refresh_s = refresh_s
        self._clock = clock
        self._kv: KeyValue | None = None
        self._cache: dict[int, P] = {}
        self._current: P | None = None
        self._checked_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def last_seen(self) -> P | None:
        """The current version as last read; None until the first read."""
        return self._current

    async def current(self) -> P:
        if self._current is not None and self._clock() - self._checked_at < self._refresh_s:
            return self._current
        async with self._lock:
            if self._current is not None and self._clock() - self._checked_at < self._refresh_s:
                return self._current
            try:
                number = await current_number(await self._bucket())
                if number is None:
                    raise PolicyMissing(
                        f"no current {self._versions.what} in {self._versions.bucket}"
                    )
                self._current = await self.version(number)
                self._checked_at = self._clock()
            except Exception as exc:
                if self._current is None:
                    raise
                # A hiccup on the bus must not stop the service: the last version read is at
                # most one refresh old.
                log.warning("policy_refresh_failed", what=self._versions.what, error=str(exc))
            return self._current

    async def version(self, number: int) -> P:
        cached = self._cache.get(number)
        if cached is not None:
            return cached
        policy = await self._versions.read(await self._bucket(), number)
        if policy is None:
            raise PolicyMissing(
                f"{self._versions.what} version {number} is not in {self._versions.bucket};"
                " every version that work in flight started with must stay there"
            )
        self._cache[number] = policy
        return policy

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._jetstream().key_value(self._versions.bucket)
        return self._kv
