"""Intake's read model of every incident: open or closed, where, what, since when, by whom.

Fed in stream order by a ``Projector`` (``civicgrid.events.projector``; the index is its
``Projection``, holding its position in the same object as what it projected) and, right after
intake's own appends, from the authoritative history it just wrote (``absorb``), so the next
report in this replica sees the incident it created a millisecond ago. Per incident it
remembers the last stream sequence applied, which makes both paths idempotent and keeps them in
order. It lives in memory: a restarted replica projects the stream again from the start.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from civicgrid.events.base import GeoPoint, IncidentEvent
from civicgrid.events.incident_events import Merged, Reported
from civicgrid.events.projector import PositionMoved, ProjectedEvent
from civicgrid.events.store import StoredEvent
from civicgrid.intake.domain.cells import bounding_box
from civicgrid.intake.domain.state import IncidentState, apply
from civicgrid.intake.open311 import Update, status_of, update_for

_SQUARE_DEG = 0.01  # about a kilometre
_COLUMNS = round(360 / _SQUARE_DEG)
_MAX_SQUARES = 64


def _row(lat: float) -> int:
    return math.floor(lat / _SQUARE_DEG)


def _column(lon: float) -> int:
    return math.floor(lon / _SQUARE_DEG)


def _wrapped(column: int) -> int:
    """A column across the antimeridian as the same column within -180..180."""
    return (column + _COLUMNS // 2) % _COLUMNS - _COLUMNS // 2


def _square(where: GeoPoint) -> tuple[int, int]:
    return _row(where.lat), _wrapped(_column(where.lon))


@dataclass(frozen=True)
class RequestQuery:
    start: datetime
    end: datetime
    service_codes: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    limit: int = 1000


class IncidentIndex:
    def __init__(self) -> None:
        self.position = 0  # last stream sequence the projector applied
        self._states: dict[str, IncidentState] = {}
        self._applied: dict[str, int] = {}
        self._keys: dict[str, str] = {}
        self._open_by_category: dict[str, set[str]] = {}
        # Open incidents by matter and by square of _SQUARE_DEG where they were reported:
        # finding the duplicates of a report looks at the squares its radius reaches, not at
        # every open incident of its matter (a storm opens hundreds).
        self._open_by_square: dict[str, dict[tuple[int, int], set[str]]] = {}
        self._by_reported_at: list[tuple[datetime, str]] = []
        self._updates: list[tuple[datetime, str, Update]] = []

    def __len__(self) -> int:
        return len(self._states)

    # -- as a projection -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return "intake-index"

    async def load_position(self) -> int:
        return self.position

    async def apply(self, events: Sequence[ProjectedEvent], *, after: int, position: int) -> None:
        if after != self.position:
            raise PositionMoved(f"intake index at {self.position}, projector at {after}")
        for projected in events:
            self._apply(projected.sequence, projected.event)
        self.position = position

    # -- feeding -------------------------------------------------------------------------

    def absorb(self, history: Iterable[StoredEvent]) -> None:
        """An incident's complete history as just read or written by this replica."""
        for stored in history:
            self._apply(stored.sequence, stored.event)

    def _apply(self, sequence: int, event: IncidentEvent) -> None:
        incident_id = event.incident_id
        if sequence <= self._applied.get(incident_id, 0):
            return
        self._applied[incident_id] = sequence
        before = self._states.get(incident_id) or IncidentState(incident_id)
        after = apply(before, event)
        self._states[incident_id] = after
        self._reindex_open(before, after)
        if isinstance(event, Reported):
            bisect.insort(self._by_reported_at, (event.occurred_at, incident_id))
        if isinstance(event, Reported | Merged) and event.idempotency_key is not None:
            self._keys.setdefault(event.idempotency_key, incident_id)
        update = update_for(event)
        if update is not None:
            bisect.insort(self._updates, (update.updated_at, update.update_id, update))

    def _reindex_open(self, before: IncidentState, after: IncidentState) -> None:
        if before.is_open:
            self._open_by_category.get(before.category, set()).discard(before.incident_id)
            if before.report is not None:
                squares = self._open_by_square.get(before.category, {})
                square = _square(before.report.location)
                squares.get(square, set()).discard(before.incident_id)
                if not squares.get(square, True):
                    del squares[square]
        if after.is_open:
            self._open_by_category.setdefault(after.category, set()).add(after.incident_id)
            if after.report is not None:
                squares = self._open_by_square.setdefault(after.category, {})
                squares.setdefault(_square(after.report.location), set()).add(after.incident_id)

    # -- reading -------------------------------------------------------------------------

    def state(self, incident_id: str) -> IncidentState | None:
        return self._states.get(incident_id)

    def incident_for_key(self, key: str) -> str | None:
        return self._keys.get(key)

    def open_in_category(self, category: str) -> list[IncidentState]:
        ids = self._open_by_category.get(category, set())
        return [self._states[incident_id] for incident_id in sorted(ids)]

    def open_near(self, category: str, where: GeoPoint, radius_m: float) -> list[IncidentState]:
        """The open incidents of ``category`` that may lie within ``radius_m`` of ``where``
        (every one that does, and some that do not)."""
        box = bounding_box(where, radius_m)
        rows = range(_row(box.south), _row(box.north) + 1)
        columns = range(_column(box.west), _column(box.east) + 1)
        if box.every_longitude or len(rows) * len(columns) > _MAX_SQUARES:
            return self.open_in_category(category)
        squares = self._open_by_square.get(category, {})
        found: set[str] = set()
        for row in rows:
            for column in columns:
                found.update(squares.get((row, _wrapped(column)), ()))
        return [self._states[incident_id] for incident_id in sorted(found)]

    def decided_on(self, incident_id: str) -> tuple[IncidentState, int] | None:
        """The incident's state and the stream sequence of the last event it folds.

        Complete up to that sequence (the projector applies the stream in order, and what this
        replica read or wrote comes whole), so a decision on it, appended expecting that
        sequence, is stored only if nothing happened since."""
        state = self._states.get(incident_id)
        return None if state is None else (state, self._applied[incident_id])

    def requests(self, query: RequestQuery) -> list[IncidentState]:
        """Newest first, reported within [start, end], at most ``limit``."""
        low = bisect.bisect_left(self._by_reported_at, (query.start, ""))
        high = bisect.bisect_right(self._by_reported_at, (query.end, "\uffff"))
        found: list[IncidentState] = []
        for _, incident_id in reversed(self._by_reported_at[low:high]):
            state = self._states[incident_id]
            if query.service_codes is not None and state.category not in query.service_codes:
                continue
            if query.statuses is not None and status_of(state) not in query.statuses:
                continue
            found.append(state)
            if len(found) >= query.limit:
                break
        return found

    def states(self, incident_ids: Sequence[str]) -> list[IncidentState]:
        return [self._states[i] for i in incident_ids if i in self._states]

    def updates(self, start: datetime, end: datetime, limit: int) -> list[Update]:
        """Oldest first within [start, end], at most ``limit``."""
        low = bisect.bisect_left(self._updates, (start,))
        found: list[Update] = []
        for updated_at, _, update in self._updates[low:]:
            if updated_at > end or len(found) >= limit:
                break
            found.append(update)
        return found
