"""并单: a report of the same category near an open incident, soon after it, joins that incident.

"Near" and "soon" are the matter's ``duplicate_radius_m`` and ``duplicate_window_minutes``,
both inclusive. Among several candidates the nearest wins, then the most recent.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from civicgrid.events.base import GeoPoint
from civicgrid.intake.domain.state import IncidentState

EARTH_RADIUS_M = 6_371_008.8


def distance_m(a: GeoPoint, b: GeoPoint) -> float:
    """Great-circle (haversine) distance; exact enough at the scale of a duplicate radius."""
    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)
    dlat = lat2 - lat1
    dlon = math.radians(b.lon - a.lon)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def minutes_between(a: datetime | None, b: datetime | None) -> float:
    if a is None or b is None:
        return 0.0
    return abs((a - b).total_seconds()) / 60.0


@dataclass(frozen=True)
class DuplicateRule:
    radius_m: float
    window_minutes: float

    @property
    def merges(self) -> bool:
        """A radius or window of 0 means reports of this matter never merge."""
        return self.radius_m > 0 and self.window_minutes > 0


@dataclass(frozen=True)
class DuplicateMatch:
    incident_id: str
    distance_m: float
    minutes_apart: float


def match(
    candidate: IncidentState, category: str, at: GeoPoint, when: datetime, rule: DuplicateRule
) -> DuplicateMatch | None:
    if not rule.merges or not candidate.is_open or candidate.category != category:
        return None
    if candidate.report is None:
        return None
    found = near(candidate.report.location, candidate.reported_at, at, when, rule)
    return None if found is None else DuplicateMatch(candidate.incident_id, *found)


def near(
    where: GeoPoint, reported_at: datetime | None, at: GeoPoint, when: datetime, rule: DuplicateRule
) -> tuple[float, float] | None:
    """(metres, minutes) between an earlier report and this one, if within the rule."""
    if not rule.merges:
        return None
    minutes = minutes_between(when, reported_at)
    if minutes > rule.window_minutes:
        return None
    distance = distance_m(at, where)
    if distance > rule.radius_m:
        return None
    return distance, minutes


def best_match(
    candidates: Iterable[IncidentState],
    category: str,
    at: GeoPoint,
    when: datetime,
    rule: DuplicateRule,
) -> DuplicateMatch | None:
    found = [m for c in candidates if (m := match(c, category, at, when, rule)) is not None]
    if not found:
        return None
    return min(found, key=lambda m: (m.distance_m, m.minutes_apart, m.incident_id))
