"""What a simulated city day holds, drawn from a seed: the reports, and how handlers and citizens
behave. Pure: no I/O, no clock. The same seed and city give the same reports in the same order
and the same decisions for the n-th assignment of the k-th incident, however fast the platform
answers.

Times here are simulated seconds from the start of the run; the driver divides them by the
speed-up to get wall-clock delays.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from civicgrid.city import City, GeoIndex, Matter

DAY_S = 24 * 3600

# The channel mix of a county-level city's day: most reports come by the hotline, grid
# workers' patrols and automatic video detection; 110 transfers are few.
CHANNEL_WEIGHTS: Mapping[str, float] = {
    "hotline_12345": 0.34,
    "grid_patrol": 0.20,
    "video_ai": 0.16,
    "iot_sensor": 0.12,
    "citizen_app": 0.13,
    "police_110": 0.05,
}

# Which matter groups each channel reports, and how often. Sensors see water, utilities and
# fire safety; cameras see the street; the hotline hears everything.
_EVERYTHING: Mapping[str, float] = {
    "city-appearance": 3.0,
    "roads": 2.0,
    "environment": 2.0,
    "neighbourhood": 2.0,
    "public-services": 1.5,
    "markets": 1.0,
    "utilities": 1.0,
    "water": 1.0,
    "safety": 1.0,
    "labour": 1.0,
    "land-agriculture": 0.5,
}
GROUP_WEIGHTS: Mapping[str, Mapping[str, float]] = {
    "hotline_12345": _EVERYTHING,
    "citizen_app": _EVERYTHING,
    "grid_patrol": {
        "city-appearance": 4.0,
        "neighbourhood": 2.0,
        "safety": 2.0,
        "environment": 1.5,
        "roads": 1.5,
        "markets": 1.0,
    },
    "video_ai": {"city-appearance": 5.0, "roads": 2.0, "environment": 1.0, "safety": 1.0},
    "iot_sensor": {"water": 3.0, "utilities": 3.0, "safety": 2.0, "environment": 1.0},
    "police_110": {"safety": 3.0, "neighbourhood": 3.0, "labour": 1.0},
}

# Reports per hour of the local day, relative: quiet at night, peaks mid-morning and afternoon.
HOURLY_PROFILE: tuple[float, ...] = (
    0.2, 0.15, 0.1, 0.1, 0.1, 0.2, 0.5, 1.0, 1.6, 1.9, 1.9, 1.6,
    1.2, 1.3, 1.7, 1.8, 1.7, 1.4, 1.1, 0.9, 0.8, 0.6, 0.4, 0.3,
)  # fmt: skip
# Most of a day's reports are the everyday matters a grid or community handles itself (street
# stalls, rubbish, neighbour disputes): the city reports over 90% resolved at community level.
# The matter list has few of them and many department matters, so they weigh more each.
LEVEL_WEIGHTS: Mapping[str, float] = {"grid": 40.0, "community": 40.0}
NEAR_DUPLICATE_SHARE = 0.08
NEAR_DUPLICATE_LOOKBACK = 40


@dataclass(frozen=True)
class PlannedReport:
    index: int
    at_s: float  # simulated seconds from the start of the run
    channel: str
    matter: str
    lon: float
    lat: float
    grid_id: str
    duplicate_of: int | None  # index of the report this one repeats, near the same place
    via_open311: bool  # a citizen's app that posts GeoReport v2 instead of the native API


@dataclass(frozen=True)
class Step:
    """One handler or citizen action, ``after_s`` simulated seconds after the assignment."""

    after_s: float
    command: str  # accept, arrive, return, suspend, resume, resolve, callback, close
    detail: Mapping[str, object]


@dataclass(frozen=True)
class Deadlines:
    """The shipped city's service levels in simulated seconds (sla.yaml before scaling)."""

    accept_s: float
    arrive_s: float | None
    resolve_s: float


def _weighted(rng: random.Random, weights: Mapping[str, float]) -> str:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys], k=1)[0]


class Scenario:
    """The city as the simulation needs it: matters by group, grids, a point sampler."""

    def __init__(self, city: City, seed: int) -> None:
        self.city = city
        self.seed = seed
        self._index = GeoIndex(city)
        self._grids = tuple(sorted(grid.id for grid in city.grids))
        by_group: dict[str, list[Matter]] = {}
        for matter in sorted(city.matters, key=lambda m: m.code):
            by_group.setdefault(matter.group, []).append(matter)
        self._by_group = by_group
        self.matters: Mapping[str, Matter] = {m.code: m for m in city.matters}

    def reports(
        self, per_day: float, duration_s: float, start_hour: float = 8.0
    ) -> list[PlannedReport]:
        """Arrivals as a Poisson process thinned by the hourly profile."""
        rng = random.Random(f"{self.seed}:reports")
        peak = max(HOURLY_PROFILE)
        mean = sum(HOURLY_PROFILE) / len(HOURLY_PROFILE)
        peak_rate = per_day / DAY_S * peak / mean  # reports per simulated second at the peak
        planned: list[PlannedReport] = []
        t = 0.0
        while True:
            t += rng.expovariate(peak_rate)
            if t >= duration_s:
                return planned
            hour = int((start_hour * 3600 + t) % DAY_S // 3600)
            if rng.random() > HOURLY_PROFILE[hour] / peak:
                continue
            planned.append(self._report(rng, len(planned), t, planned))

    def _report(
        self, rng: random.Random, index: int, at_s: float, earlier: Sequence[PlannedReport]
    ) -> PlannedReport:
        channel = _weighted(rng, CHANNEL_WEIGHTS)
        lookback = earlier[-NEAR_DUPLICATE_LOOKBACK:]
        recent = [r for r in lookback if self.matters[r.matter].merges_duplicates]
        if recent and rng.random() < NEAR_DUPLICATE_SHARE:
            original = rng.choice(recent)
            radius = self.matters[original.matter].duplicate_radius_m
            lon, lat = _nudge(rng, original.lon, original.lat, radius / 3)
            return PlannedReport(
                index, at_s, channel, original.matter, lon, lat, original.grid_id,
                original.index, via_open311=False,
            )  # fmt: skip
        weights = {g: w for g, w in GROUP_WEIGHTS[channel].items() if g in self._by_group}
        candidates = self._by_group[_weighted(rng, weights)]
        matter = rng.choices(
            candidates,
            weights=[LEVEL_WEIGHTS.get(str(m.handling_level), 1.0) for m in candidates],
            k=1,
        )[0]
        grid_id = rng.choice(self._grids)
        lon, lat = self._index.random_point_in(grid_id, rng)
        via_open311 = channel == "citizen_app" and rng.random() < 0.4
        return PlannedReport(
            index, at_s, channel, matter.code, lon, lat, grid_id, None, via_open311
        )

    def deadlines(self, matter_code: str) -> Deadlines:
        sla_class = self.city.sla.classes[self.matters[matter_code].sla_class]

        def seconds(duration: object) -> float:
            minutes = getattr(duration, "minutes", None)
            if minutes is None:  # working days: about a calendar week for five
                days = getattr(duration, "working_days", 0) or 0
                return days * 1.4 * DAY_S
            return float(minutes) * 60

        return Deadlines(
            accept_s=seconds(sla_class.accept),
            arrive_s=seconds(sla_class.arrive) if sla_class.arrive else None,
            resolve_s=seconds(sla_class.resolve),
        )

    def handling(
        self, report_index: int, assignment_no: int, matter_code: str, on_site: bool
    ) -> list[Step]:
        """What the assigned unit (and later the citizen) does with the n-th assignment."""
        rng = random.Random(f"{self.seed}:handling:{report_index}:{assignment_no}")
        due = self.deadlines(matter_code)
        # "Some wrongly": units return dispatches that were theirs; routing sends them on.
        if assignment_no <= 2 and rng.random() < 0.07:
            reason = rng.choice(("not_our_duty", "wrong_jurisdiction", "unclear_ownership"))
            return [Step(rng.uniform(0.1, 0.6) * due.accept_s, "return", {"reason": reason})]
        steps: list[Step] = []
        late_accept = rng.random() < 0.12
        accept_at = due.accept_s * (rng.uniform(1.2, 3.0) if late_accept else rng.uniform(0.1, 0.7))
        steps.append(Step(accept_at, "accept", {}))
        t = accept_at
        if on_site and due.arrive_s is not None:
            late_arrival = rng.random() < 0.10
            arrive_at = due.arrive_s * (
                rng.uniform(1.1, 2.5) if late_arrival else rng.uniform(0.3, 0.95)
            )
            t = max(t + 60, arrive_at)
            steps.append(Step(t, "arrive", {}))
        if rng.random() < 0.05:
            steps.append(Step(t + 60, "suspend", {}))
            t += rng.uniform(1800, 3 * 3600)
            steps.append(Step(t, "resume", {}))
        late_resolve = rng.random() < 0.10
        if late_resolve:
            resolve_at = due.resolve_s * rng.uniform(1.05, 1.4)
        else:
            # Most matters are done in a few hours; the long tail stays inside the deadline.
            resolve_at = min(rng.lognormvariate(math.log(3 * 3600), 0.8), 0.95 * due.resolve_s)
        t = max(t + 300, resolve_at)
        steps.append(Step(t, "resolve", {}))
        t += rng.uniform(600, 3600)
        satisfied = rng.random() < 0.86
        steps.append(
            Step(
                t,
                "callback",
                {"satisfied": satisfied, "rating": rng.choice((4, 5) if satisfied else (1, 2))},
            )
        )
        if satisfied:
            steps.append(Step(t + rng.uniform(60, 600), "close", {}))
        return steps


def _nudge(rng: random.Random, lon: float, lat: float, metres: float) -> tuple[float, float]:
    angle = rng.uniform(0, 2 * math.pi)
    distance = rng.uniform(0, metres)
    dlat = distance * math.cos(angle) / 111_320
    dlon = distance * math.sin(angle) / (111_320 * math.cos(math.radians(lat)))
    return lon + dlon, lat + dlat


def as_duration(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
