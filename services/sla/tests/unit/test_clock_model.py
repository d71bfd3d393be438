"""Random command sequences: the clocks the walk keeps match a simple reference model, whether
the sla service reacts after every event or only once at the end (late, in one go). Command
centre class orders are among the commands: a clock restarts when its deadline differs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from civicgrid.city.workcalendar import build_calendar
from civicgrid.events.base import IncidentEvent
from civicgrid.sla.domain.decide import walk
from tests.support.sla import GRID_A, GRID_B, Script, policy

CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")
POLICY = policy()
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

COMMANDS = (
    "assign_a",
    "assign_b_on_site",
    "accept",
    "arrive",
    "return",
    "suspend",
    "resume",
    "resolve",
    "reopen",
    "close",
    "order_urgent",
    "order_difficult",
    "order_standard",
)


def deadline(sla_class: str, clock: str) -> str | None:
    """The policy's deadline as written ("30m", "5wd"); None when the class has none."""
    duration = POLICY.deadlines(sla_class).of(clock)
    return None if duration is None else str(duration)


@dataclass
class ModelClock:
    status: str  # running, paused, stopped
    version: int
    unit: str | None
    sla_class: str
    reason: str | None = None


@dataclass
class Model:
    clocks: dict[str, ModelClock] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    unit: str | None = None
    assigned_class: str = "standard"
    ordered_class: str | None = None

    @property
    def sla_class(self) -> str:
        return self.ordered_class or self.assigned_class

    def active(self, name: str) -> bool:
        clock = self.clocks.get(name)
        return clock is not None and clock.status != "stopped"

    def start(self, name: str, unit: str | None, status: str = "running") -> None:
        self.versions[name] = self.versions.get(name, 0) + 1
        self.clocks[name] = ModelClock(status, self.versions[name], unit, self.sla_class)

    def order(self, sla_class: str) -> None:
        self.ordered_class = sla_class
        if self.closed:
            return
        for name, clock in list(self.clocks.items()):
            if clock.status == "stopped" or clock.sla_class == sla_class:
                continue
            if deadline(sla_class, name) is None:
                self.stop(name, "cancelled")
            elif deadline(sla_class, name) != deadline(clock.sla_class, name):
                status = clock.status
                self.stop(name, "superseded")
                self.start(name, clock.unit, status)

    def stop(self, name: str, reason: str) -> None:
        if self.active(name):
            self.clocks[name].status = "stopped"
            self.clocks[name].reason = reason

    def do(self, command: str) -> None:
        if command.startswith("order_"):
            self.order(command.removeprefix("order_"))
        elif command.startswith("assign"):
            unit = GRID_A.id if command == "assign_a" else GRID_B.id
            self.unit = unit  # even when closed: a reopened incident's clock is for it
            self.assigned_class = "standard" if command == "assign_a" else "on_site"
            if self.closed:
                return
            for name in ("accept", "arrive"):
                self.stop(name, "superseded")
            self.start("accept", unit)
            # The ordered class stands: an arrive deadline only if it has one.
            if command == "assign_b_on_site" and deadline(self.sla_class, "arrive"):
                self.start("arrive", unit)
            if not self.active("resolve"):
                self.start("resolve", unit)
        elif command == "return":
            for name in ("accept", "arrive"):
                self.stop(name, "superseded")
        elif command == "accept":
            self.stop("accept", "met")
        elif command == "arrive":
            self.stop("arrive", "met")
        elif command == "resolve":
            self.stop("accept", "cancelled")
            self.stop("arrive", "cancelled")
            self.stop("resolve", "met")
        elif command == "suspend":
            for clock in self.clocks.values():
                if clock.status == "running":
                    clock.status = "paused"
        elif command == "resume":
            for clock in self.clocks.values():
                if clock.status == "paused":
                    clock.status = "running"
        elif command == "reopen":
            self.closed = False
            if not self.active("resolve"):
                self.start("resolve", self.unit)
        elif command == "close":
            for name in list(self.clocks):
                self.stop(name, "cancelled")
            self.closed = True


def event_for(script: Script, command: str) -> IncidentEvent:
    unit = GRID_B if command == "assign_b_on_site" else GRID_A
    if command.startswith("order_"):
        return script.ordered(command.removeprefix("order_"))
    if command == "assign_a":
        return script.assigned(GRID_A)
    if command == "assign_b_on_site":
        return script.assigned(GRID_B, sla_class="on_site", on_site=True)
    builders = {
        "accept": script.accepted,
        "arrive": script.arrived,
        "return": script.returned,
        "suspend": script.suspended,
        "resume": script.resumed,
        "resolve": script.resolved,
    }
    if command in builders:
        return builders[command](unit)
    return script.reopened() if command == "reopen" else script.closed()


@settings(max_examples=150, deadline=None)
@given(
    commands=st.lists(st.sampled_from(COMMANDS), min_size=1, max_size=25),
    gaps=st.lists(st.integers(min_value=0, max_value=7200), min_size=25, max_size=25),
    react_every=st.sampled_from([1, 3, 100]),
)
def test_the_clocks_match_the_reference_model(
    commands: list[str], gaps: list[int], react_every: int
) -> None:
    script = Script(T0)
    history: list[IncidentEvent] = [script.reported()]
    model = Model()
    for index, command in enumerate(commands):
        history.append(event_for(script.at(gaps[index]), command))
        model.do(command)
        if (index + 1) % react_every == 0:
            history += walk(script.incident_id, history, POLICY, CALENDAR.due).missing
    history += walk(script.incident_id, history, POLICY, CALENDAR.due).missing
    walked = walk(script.incident_id, history, POLICY, CALENDAR.due)
    assert walked.missing == ()
    actual = {
        name: (c.status.value, c.version, c.unit.id if c.unit else None, c.stop_reason, c.sla_class)
        for name, c in walked.clocks.by_name.items()
    }
    expected = {
        name: (c.status, c.version, c.unit, c.reason, c.sla_class)
        for name, c in model.clocks.items()
    }
    assert actual == expected, commands
    # Every start and stop is an event: each version started once, stopped at most once.
    for name, clock in walked.clocks.by_name.items():
        starts = [e for e in history if e.event_type == "sla_clock_started" and e.clock == name]  # type: ignore[attr-defined]
        assert [e.clock_version for e in starts] == list(range(1, clock.version + 1))  # type: ignore[attr-defined]
