"""并单 across replicas: who is opening an incident of a matter, where and when, in a NATS KV
bucket.

A replica's in-memory index learns of another replica's new incident only after the stream
delivers it, so two reports of one problem arriving at two replicas at once would both open
an incident. Instead, a report that would open one first claims it: it writes a claim under
a key of its own, ``<matter>.<time bucket>.<band>.<column>.<incident id>`` (its time bucket
and spatial cell, ``domain.cells``), and only then reads every claim in the buckets and cells
that its duplicate window and radius reach, in one multi-last Direct Get.

Every claim has the stream sequence of its write, and of claims near each other the earliest
wins. Of two near claimants, the later one wrote after the earlier one did and read after its
own write (at least at its own sequence, so a lagging replica cannot answer it): it sees the
earlier claim, joins that incident (waiting briefly while it is on its way) and withdraws its
own claim. One replica or many, the same input gives the same outcome. Claims of one matter at
different places or times are under different keys: they never wait for each other, and no
claim is ever rewritten, so there is nothing to contend for.

A claim is a hint, not a fact: a claimant that dies before appending leaves a claim naming an
incident that does not exist, which readers skip once it is older than ``CLAIM_GRACE``. Keys
expire with the bucket's max age.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from civicgrid.events.base import GeoPoint
from civicgrid.events.direct_get import DirectReader, RawMessage, reaches
from civicgrid.events.streams import INTAKE_DUPLICATES_BUCKET
from civicgrid.intake.domain.cells import Grid, bucket_of, near_buckets
from civicgrid.intake.domain.duplicates import DuplicateRule, near

# A claimant appends its incident right after claiming; one that has not after this long died.
CLAIM_GRACE = timedelta(seconds=5)
_STREAM = f"KV_{INTAKE_DUPLICATES_BUCKET}"
_PREFIX = f"$KV.{INTAKE_DUPLICATES_BUCKET}."
# Far more claims than a few cells and buckets of one matter hold.
_MAX_READ = 1024


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
class Claimed:
    """A claim as written: its key and the stream sequence that orders it among claims."""

    category: str
    claim: Claim
    key: str
    sequence: int


def claim_key(category: str, claim: Claim, rule: DuplicateRule) -> str:
    cell = Grid(rule.radius_m).cell_of(claim.location)
    bucket = bucket_of(claim.at, rule.window_minutes)
    return f"{category}.{bucket}.{cell.band}.{cell.column}.{claim.incident_id}"


def near_filters(category: str, where: GeoPoint, when: datetime, rule: DuplicateRule) -> list[str]:
    """The keys (with a wildcard for the incident) of every claim that can be near."""
    cells = Grid(rule.radius_m).near_cells(where)
    return [
        f"{category}.{bucket}.{cell.band}.{cell.column}.*"
        for bucket in near_buckets(when, rule.window_minutes)
        for cell in cells
    ]


class DuplicateClaims:
    def __init__(self, jetstream: Callable[[], JetStreamContext]) -> None:
        self._jetstream = jetstream
        self._kv: KeyValue | None = None
        self._reader: tuple[object, DirectReader] | None = None

    async def claim(
        self, category: str, claim: Claim, rule: DuplicateRule
    ) -> tuple[Claimed, list[Claim]]:
        """Write ``claim`` and read the claims near it: those written before it (as
        ``earlier_near``). The read goes out with the write, not after its acknowledgement;
        an answer that does not reach the write's sequence is asked again."""
        key = claim_key(category, claim, rule)
        value = json.dumps(claim.to_json(), separators=(",", ":")).encode()
        # A put, not a create: a keyed report retried after its claimant died claims again,
        # under the same key, and queues behind whoever claimed meanwhile.
        request = _near_request(category, claim, rule)
        reader = await self._direct()
        sequence, (found, position) = await asyncio.gather(
            (await self._bucket()).put(key, value), reader.read_once(request)
        )
        if not reaches(found, position, sequence):
            found = await reader.get(request, at_least=sequence)
        mine = Claimed(category, claim, key, sequence)
        return mine, _earlier_near(mine, found, rule)

    async def earlier_near(self, mine: Claimed, rule: DuplicateRule) -> list[Claim]:
        """The claims written before ``mine`` within the rule's radius and window of it."""
        request = _near_request(mine.category, mine.claim, rule)
        found = await (await self._direct()).get(request, at_least=mine.sequence)
        return _earlier_near(mine, found, rule)

    async def withdraw(self, mine: Claimed) -> None:
        """``mine`` lost to an earlier claim: nobody need wait for its incident any more."""
        await (await self._bucket()).delete(mine.key)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._jetstream().key_value(INTAKE_DUPLICATES_BUCKET)
        return self._kv

    async def _direct(self) -> DirectReader:
        nc = self._jetstream()._nc
        if self._reader is None or self._reader[0] is not nc:
            self._reader = (nc, DirectReader(nc, _STREAM))
        return self._reader[1]


def _near_request(category: str, claim: Claim, rule: DuplicateRule) -> dict[str, object]:
    filters = near_filters(category, claim.location, claim.at, rule)
    return {"multi_last": [_PREFIX + f for f in filters], "batch": _MAX_READ}


def _earlier_near(mine: Claimed, found: list[RawMessage], rule: DuplicateRule) -> list[Claim]:
    claim = mine.claim
    earlier = []
    for raw in found:
        other = _claim_in(raw)
        if other is None or raw.sequence >= mine.sequence:
            continue
        if near(other.location, other.at, claim.location, claim.at, rule) is not None:
            earlier.append(other)
    return earlier


def _claim_in(raw: RawMessage) -> Claim | None:
    """The claim a message holds; None for a withdrawn (deleted or purged) one."""
    if raw.headers.get("KV-Operation") in ("DEL", "PURGE") or not raw.data:
        return None
    return Claim.from_json(json.loads(raw.data))
