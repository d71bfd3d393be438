"""并单 across replicas: who opened an incident of a matter, where and when, in a NATS KV bucket.

A replica's in-memory index learns of another replica's new incident only after the stream
delivers it, so two reports of one problem arriving at two replicas at once would both open
an incident. Instead, a report that would open one first claims it in the key of its matter
and time bucket (``<matter>.<bucket>``, the bucket as long as the matter's duplicate window),
with a revision check on every key it read: the current and the previous bucket, so a
window that straddles a bucket boundary is covered too. Of two concurrent claimants exactly
one wins; the other reads again, finds the winner's claim and joins that incident. One replica
or many, the same input gives the same outcome.

A claim is a hint, not a fact: a claimant that dies before appending leaves a claim naming an
incident that does not exist, which readers skip. Keys expire with the bucket's max age.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from nats.js import JetStreamContext
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from civicgrid.events.base import GeoPoint
from civicgrid.events.streams import INTAKE_DUPLICATES_BUCKET

ABSENT = 0
# A claimant appends its incident right after claiming; one that has not after this long died.
CLAIM_GRACE = timedelta(seconds=5)


@dataclass(frozen=True)
class Claim:
    incident_id: str
    location: GeoPoint
    at: datetime  # when the report says it happened
    claimed_at: datetime  # when the claimant claimed it (its append follows within moments)

    def pending(self, now: datetime) -> bool:
        """Young enough that its incident may still be on its way into the stream."""
        return now - self.claimed_at < CLAIM_GRACE

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.incident_id,
            "lon": self.location.lon,
            "lat": self.location.lat,
            "at": self.at.isoformat(),
            "claimed_at": self.claimed_at.isoformat(),
        }

    @classmethod
    def from_json(cls, raw: dict[str, object]) -> Claim:
        return cls(
            str(raw["id"]),
            GeoPoint(lon=float(str(raw["lon"])), lat=float(str(raw["lat"]))),
            datetime.fromisoformat(str(raw["at"])),
            datetime.fromisoformat(str(raw["claimed_at"])),
        )


@dataclass(frozen=True)
class ClaimedKey:
    key: str
    revision: int  # ABSENT when the key does not exist yet
    claims: tuple[Claim, ...]


@dataclass(frozen=True)
class ClaimsView:
    """What one read of a matter's claims saw: the basis of a revision-checked claim."""

    keys: tuple[ClaimedKey, ...]
    current: str  # the key a new claim goes into

    def claims(self) -> list[Claim]:
        return [claim for key in self.keys for claim in key.claims]


def bucket_keys(category: str, when: datetime, window_minutes: float) -> tuple[str, str]:
    """The previous and the current bucket's key of a matter at ``when``."""
    width_s = max(60.0, window_minutes * 60.0)
    bucket = int(when.timestamp() // width_s)
    return f"{category}.{bucket - 1}", f"{category}.{bucket}"


class DuplicateClaims:
    def __init__(self, jetstream: Callable[[], JetStreamContext]) -> None:
        self._jetstream = jetstream
        self._kv: KeyValue | None = None

    async def view(self, category: str, when: datetime, window_minutes: float) -> ClaimsView:
        kv = await self._bucket()
        keys = bucket_keys(category, when, window_minutes)
        return ClaimsView(tuple([await _read(kv, key) for key in keys]), current=keys[-1])

    async def claim(self, view: ClaimsView, claim: Claim, window_minutes: float) -> bool:
        """Add ``claim`` if nothing changed since ``view`` was read; False if another won."""
        kv = await self._bucket()
        oldest = claim.at - timedelta(minutes=2 * window_minutes)
        for key in sorted(view.keys, key=lambda k: k.key):
            kept = [c for c in key.claims if c.at >= oldest]
            if key.key == view.current:
                kept.append(claim)
            try:
                await _write(kv, key.key, kept, key.revision)
            except KeyWrongLastSequenceError:
                return False
        return True

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._jetstream().key_value(INTAKE_DUPLICATES_BUCKET)
        return self._kv


async def _read(kv: KeyValue, key: str) -> ClaimedKey:
    try:
        entry = await kv.get(key)
    except KeyNotFoundError:
        return ClaimedKey(key, ABSENT, ())
    raw = json.loads(entry.value or b"[]")
    return ClaimedKey(key, entry.revision or ABSENT, tuple(Claim.from_json(c) for c in raw))


async def _write(kv: KeyValue, key: str, claims: Sequence[Claim], revision: int) -> None:
    value = json.dumps([c.to_json() for c in claims], separators=(",", ":")).encode()
    if revision == ABSENT:
        await kv.create(key, value)
    else:
        await kv.update(key, value, last=revision)
