"""Builders for sla's tests: incident events with only what a test cares about, and policies."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from nats.js.api import DeliverPolicy

from civicgrid.city.workcalendar import CalendarNotCovered, DeclaredSchedule
from civicgrid.events import streams
from civicgrid.events.base import Actor, ActorKind, GeoPoint, IncidentEvent, UnitKind, UnitRef
from civicgrid.events.consumer import ConsumerSpec
from civicgrid.events.ids import new_incident_id
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    Channel,
    Closed,
    DeadlineExtended,
    HandlingLevel,
    Jurisdiction,
    Reopened,
    ReportDetails,
    Reported,
    Resolved,
    Resumed,
    Returned,
    ReturnReason,
    SlaClassOrdered,
    Suspended,
)
from civicgrid.events.timers import TimerFiring
from civicgrid.sla.app import CLOCKS_CONSUMER, TIMERS_CONSUMER
from civicgrid.sla.config import SlaConfig
from civicgrid.sla.domain.policy import SlaPolicyVersion

GRID_A = UnitRef(kind=UnitKind.GRID, id="c01-g001")
GRID_B = UnitRef(kind=UnitKind.GRID, id="c01-g002")
COMMAND_CENTRE = UnitRef(kind=UnitKind.COMMAND_CENTRE, id="command-centre")
DEPARTMENT = UnitRef(kind=UnitKind.DEPARTMENT, id="dept-urban-mgmt")
INTAKE = Actor(kind=ActorKind.SERVICE, id="intake")


def policy(
    version: int = 1,
    *,
    accept: str = "30m",
    arrive: str = "60m",
    resolve: str = "24h",
    warnings: tuple[float, ...] = (0.8,),
    ladder: tuple[dict[str, Any], ...] = (),
    urgent: tuple[str, str, str] = ("10m", "30m", "4h"),
) -> SlaPolicyVersion:
    """Classes as sla.yaml ships them, with the given standard deadlines; ``urgent`` is
    (accept, arrive, resolve), and ``difficult`` resolves within 5 working days."""
    urgent_accept, urgent_arrive, urgent_resolve = urgent
    classes = {
        "standard": {"accept": accept, "resolve": resolve},
        "on_site": {"accept": accept, "arrive": arrive, "resolve": resolve},
        "urgent": {"accept": urgent_accept, "arrive": urgent_arrive, "resolve": urgent_resolve},
        "difficult": {"accept": accept, "resolve": "5wd"},
    }
    return SlaPolicyVersion.model_validate(
        {
            "policy_version": version,
            "warning_ratios": warnings,
            "classes": classes,
            "ladder": ladder,
        }
    )


def rung(
    level_id: str, after: str, notify: str, *, reassign: bool = False, every: str | None = None
) -> dict[str, Any]:
    return {
        "id": level_id,
        "name": level_id,
        "after": after,
        "notify": notify,
        "reassign": reassign,
        "repeat_every": every,
    }


class Script:
    """One incident's events at controlled times, as intake and routing would write them."""

    def __init__(self, start: datetime, incident_id: str | None = None) -> None:
        self.incident_id = incident_id or new_incident_id()
        self.now = start
        self.assignments = 0

    def at(self, seconds: float) -> Script:
        self.now = self.now + timedelta(seconds=seconds)
        return self

    def _env(self) -> dict[str, Any]:
        return {
            "incident_id": self.incident_id,
            "source": "tests",
            "actor": INTAKE,
            "correlation_id": f"corr-{self.incident_id}",
            "occurred_at": self.now,
        }

    def reported(self) -> Reported:
        report = ReportDetails(
            channel=Channel.CITIZEN_APP,
            category="city-appearance.street-vending",
            location=GeoPoint(lon=114.25, lat=22.72),
        )
        return Reported(**self._env(), report=report)

    def assigned(
        self, unit: UnitRef = GRID_A, *, sla_class: str = "standard", on_site: bool = False
    ) -> Assigned:
        self.assignments += 1
        return Assigned(
            **self._env(),
            level=HandlingLevel.GRID,
            lead_unit=unit,
            sla_class=sla_class,
            on_site=on_site,
            jurisdiction=Jurisdiction(community_id="c01", grid_id=unit.id),
            rule="test",
            policy_version=1,
            explanation="test",
            assignment_no=self.assignments,
        )

    def accepted(self, unit: UnitRef = GRID_A) -> Accepted:
        return Accepted(**self._env(), unit=unit)

    def arrived(self, unit: UnitRef = GRID_A) -> Arrived:
        return Arrived(**self._env(), unit=unit)

    def returned(self, unit: UnitRef = GRID_A) -> Returned:
        return Returned(**self._env(), unit=unit, reason_code=ReturnReason.WRONG_JURISDICTION)

    def suspended(self, unit: UnitRef = GRID_A) -> Suspended:
        return Suspended(**self._env(), unit=unit, reason="waiting for the citizen")

    def resumed(self, unit: UnitRef = GRID_A) -> Resumed:
        return Resumed(**self._env(), unit=unit)

    def extended(self, new_due_at: datetime, clock: str = "resolve") -> DeadlineExtended:
        return DeadlineExtended(
            **self._env(), clock=clock, new_due_at=new_due_at, approved_by=DEPARTMENT, reason="x"
        )

    def resolved(self, unit: UnitRef = GRID_A) -> Resolved:
        return Resolved(**self._env(), unit=unit, resolution="done")

    def closed(self) -> Closed:
        return Closed(**self._env(), reason="done")

    def reopened(self) -> Reopened:
        return Reopened(**self._env(), reason="back again")

    def ordered(self, sla_class: str, previous: str | None = None) -> SlaClassOrdered:
        """The command centre's order of the incident's SLA class, as intake writes it."""
        env = {**self._env(), "actor": Actor(kind=ActorKind.UNIT, id=COMMAND_CENTRE.id)}
        return SlaClassOrdered(
            **env,
            sla_class=sla_class,
            previous_class=previous,
            ordered_by=COMMAND_CENTRE,
            reason="ordered by the command centre",
        )


def types_of(events: list[IncidentEvent] | tuple[IncidentEvent, ...]) -> list[str]:
    return [f"{e.event_type}:{getattr(e, 'clock', '')}".rstrip(":") for e in events]


def beyond_the_holiday_data(config: SlaConfig, *, years_ahead: int = 3) -> SlaConfig:
    """The config with fictional weekday-only schedules declared for the years after the data.

    Tests run at today's date; without this, every test of a working-day clock would start to
    fail once its deadline reaches a year the holiday package does not cover (from late
    December before each new year's data ships). The calendar rule itself is tested on fixed
    dates in the unit tests; these years are never a statement about real holidays.
    """
    calendar = config.calendar
    today = datetime.now(calendar.zone).date()
    declared = dict(calendar.declared)
    for year in range(today.year, today.year + years_ahead + 1):
        try:
            calendar.check_covers([year])
        except CalendarNotCovered:
            declared.setdefault(year, DeclaredSchedule(holidays=frozenset()))
    widened = replace(calendar, declared=declared, _cache={})
    return replace(config, calendar=widened)


def fresh_durables(suffix: str) -> tuple[ConsumerSpec, ConsumerSpec]:
    """sla's two work consumers under test names, starting at new messages, so other tests'
    incidents and firings in the shared streams do not reach them."""
    clocks = ConsumerSpec(
        service="sla",
        durable=f"sla-clocks-{suffix}",
        filter_subjects=CLOCKS_CONSUMER.filter_subjects,
        backoff_s=(0.05, 0.2),
        deliver_policy=DeliverPolicy.NEW,
    )
    fired = ConsumerSpec(
        service="sla",
        durable=f"sla-timers-{suffix}",
        filter_subjects=TIMERS_CONSUMER.filter_subjects,
        stream=streams.SLA_TIMERS,
        backoff_s=(0.05, 0.2),
        deliver_policy=DeliverPolicy.NEW,
        decode=TIMERS_CONSUMER.decode,
    )
    return clocks, fired


class FixedPolicies:
    """sla's policy port answering one version, whatever the incident is pinned to."""

    def __init__(self, version: SlaPolicyVersion) -> None:
        self.version = version

    async def for_incident(self, pinned: int | None) -> SlaPolicyVersion:
        return self.version


class RecordingTimers:
    """sla's timer port that only records what was armed and cancelled."""

    def __init__(self) -> None:
        self.armed: list[TimerFiring] = []
        self.cancelled: list[tuple[str, str, str]] = []

    async def arm(self, firing: TimerFiring) -> None:
        self.armed.append(firing)

    async def cancel(self, incident_id: str, clock: str, stage: str) -> None:
        self.cancelled.append((incident_id, clock, stage))
