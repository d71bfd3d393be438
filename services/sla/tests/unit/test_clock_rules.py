"""The clock rules and the firing fence, as pure decisions on an incident's history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from civicgrid.city.workcalendar import build_calendar
from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    ClockStopReason,
    Escalated,
    SlaClockStarted,
    SlaClockStopped,
)
from civicgrid.sla.domain.clocks import Status
from civicgrid.sla.domain.decide import (
    Firing,
    default_notify_unit,
    judge_firing,
    pending_firings,
    walk,
)
from civicgrid.sla.domain.policy import SlaPolicyVersion
from tests.support.sla import GRID_A, GRID_B, Script, policy, rung, types_of

T0 = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)
CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")
POLICY = policy(
    ladder=(
        rung("community-head", "0m", "community_head", reassign=True),
        rung("department-head", "2h", "department_head", every="30m"),
        rung("command-centre", "3h", "command_centre"),
    )
)


class Incident:
    """History with the sla service's reactions appended, the way the handler does it."""

    def __init__(self, policy_version: SlaPolicyVersion = POLICY) -> None:
        self.script = Script(T0)
        self.policy = policy_version
        self.history: list[IncidentEvent] = [self.script.reported()]

    def happen(self, event: IncidentEvent) -> list[IncidentEvent]:
        self.history.append(event)
        walked = walk(self.script.incident_id, self.history, self.policy, CALENDAR.due)
        self.history += walked.missing
        again = walk(self.script.incident_id, self.history, self.policy, CALENDAR.due)
        assert again.missing == (), "a second walk on the same history must find nothing to do"
        return list(walked.missing)

    def clocks(self):  # type: ignore[no-untyped-def]
        return walk(self.script.incident_id, self.history, self.policy, CALENDAR.due).clocks

    def fire(self, stage: str, now: datetime, step: int = 1, repeat: int = 0) -> list[str]:
        clocks = self.clocks()
        clock = clocks.by_name["resolve"]
        firing = Firing(self.script.incident_id, "resolve", clock.version, stage, step, repeat)
        judged = judge_firing(
            clocks, firing, self.policy, now, correlation_id="c", notify_unit=default_notify_unit
        )
        self.history += judged.events
        return [judged.verdict, *types_of(judged.events)]


def test_an_on_site_assignment_starts_accept_arrive_and_resolve_from_its_time() -> None:
    incident = Incident()
    started = incident.happen(incident.script.at(60).assigned(sla_class="on_site", on_site=True))
    assert types_of(started) == [
        "sla_clock_started:accept",
        "sla_clock_started:arrive",
        "sla_clock_started:resolve",
    ]
    due = {e.clock: e.due_at for e in started if isinstance(e, SlaClockStarted)}
    assigned_at = T0 + timedelta(seconds=60)
    assert due == {
        "accept": assigned_at + timedelta(minutes=30),
        "arrive": assigned_at + timedelta(minutes=60),
        "resolve": assigned_at + timedelta(hours=24),
    }
    first = started[0]
    assert isinstance(first, SlaClockStarted)
    assert first.warn_at == assigned_at + timedelta(minutes=24)
    assert first.unit == GRID_A and first.policy_version == 1 and first.clock_version == 1


def test_a_difficult_matter_resolves_in_five_working_days() -> None:
    incident = Incident()
    incident.script.now = datetime(2026, 9, 24, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    started = incident.happen(incident.script.assigned(sla_class="difficult"))
    resolve = next(e for e in started if isinstance(e, SlaClockStarted) and e.clock == "resolve")
    assert resolve.due_at == datetime(2026, 10, 9, 16, 0, tzinfo=UTC)
    assert resolve.duration == "5wd"


def test_acceptance_in_time_stops_accept_as_met_and_keeps_resolve_running() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    stopped = incident.happen(incident.script.at(600).accepted())
    assert types_of(stopped) == ["sla_clock_stopped:accept"]
    stop = stopped[0]
    assert isinstance(stop, SlaClockStopped)
    assert stop.reason is ClockStopReason.MET and stop.on_time is True
    assert incident.clocks().by_name["resolve"].status is Status.RUNNING


def test_late_acceptance_is_met_but_not_on_time() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    stop = incident.happen(incident.script.at(31 * 60).accepted())[0]
    assert isinstance(stop, SlaClockStopped) and stop.on_time is False and stop.late_s == 60


def test_a_return_supersedes_accept_and_the_next_assignment_restarts_it_for_the_new_unit() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned(GRID_A))
    stopped = incident.happen(incident.script.at(60).returned(GRID_A))
    assert [(e.clock, e.reason) for e in stopped if isinstance(e, SlaClockStopped)] == [
        ("accept", ClockStopReason.SUPERSEDED)
    ]
    started = incident.happen(incident.script.at(60).assigned(GRID_B))
    assert types_of(started) == ["sla_clock_started:accept"]  # resolve keeps running
    accept = started[0]
    assert isinstance(accept, SlaClockStarted)
    assert accept.unit == GRID_B and accept.clock_version == 2


def test_a_reassignment_without_a_return_supersedes_the_old_accept() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned(GRID_A))
    moved = incident.happen(incident.script.at(60).assigned(GRID_B))
    assert types_of(moved) == ["sla_clock_stopped:accept", "sla_clock_started:accept"]


def test_suspend_and_resume_move_the_due_time_by_the_paused_time() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    due = incident.clocks().by_name["resolve"].due_at
    paused = incident.happen(incident.script.at(600).suspended())
    assert types_of(paused) == ["sla_clock_paused:accept", "sla_clock_paused:resolve"]
    assert all(
        pending_firings("x", c, POLICY)["breach"] is None for c in incident.clocks().active()
    )
    incident.happen(incident.script.at(3600).resumed())
    resolve = incident.clocks().by_name["resolve"]
    assert resolve.status is Status.RUNNING
    assert resolve.due_at == due + timedelta(hours=1)
    warning = pending_firings("x", resolve, POLICY)["warning"]
    assert warning is not None and warning.fire_at == resolve.due_at - timedelta(hours=24 * 0.2)


def test_an_extension_moves_the_resolve_deadline_without_an_sla_event() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    new_due = T0 + timedelta(days=3)
    assert incident.happen(incident.script.at(60).extended(new_due)) == []
    assert incident.clocks().by_name["resolve"].due_at == new_due


def test_resolution_stops_resolve_met_and_cancels_the_unit_clocks() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned(sla_class="on_site", on_site=True))
    stopped = incident.happen(incident.script.at(60).resolved())
    assert [(e.clock, e.reason) for e in stopped if isinstance(e, SlaClockStopped)] == [
        ("accept", ClockStopReason.CANCELLED),
        ("arrive", ClockStopReason.CANCELLED),
        ("resolve", ClockStopReason.MET),
    ]


def test_reopening_starts_a_new_resolve_clock_and_closing_cancels_everything() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    incident.happen(incident.script.at(60).accepted())
    incident.happen(incident.script.at(60).resolved())
    started = incident.happen(incident.script.at(60).reopened())
    assert types_of(started) == ["sla_clock_started:resolve"]
    assert isinstance(started[0], SlaClockStarted) and started[0].clock_version == 2
    cancelled = incident.happen(incident.script.at(60).closed())
    assert [(e.clock, e.reason) for e in cancelled if isinstance(e, SlaClockStopped)] == [
        ("resolve", ClockStopReason.CANCELLED)
    ]
    assert incident.clocks().active() == []


def test_events_handled_late_decide_from_their_own_times() -> None:
    # The sla service sees assigned and accepted only after both are stored.
    incident = Incident()
    script = incident.script
    incident.history += [script.assigned(), script.at(300).accepted()]
    walked = walk(script.incident_id, incident.history, POLICY, CALENDAR.due)
    assert types_of(walked.missing) == [
        "sla_clock_started:accept",
        "sla_clock_started:resolve",
        "sla_clock_stopped:accept",
    ]


def test_the_ladder_fires_warning_breach_and_levels_in_order_once_each() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    due = incident.clocks().by_name["resolve"].due_at
    assert incident.fire("breach", due - timedelta(hours=1)) == ["early"]
    assert incident.fire("warning", due - timedelta(hours=4)) == ["fired", "sla_warning:resolve"]
    assert incident.fire("warning", due - timedelta(hours=4))[0] == "duplicate"
    assert incident.fire("breach", due) == ["fired", "sla_breached:resolve"]
    assert incident.fire("breach", due)[0] == "duplicate"
    assert incident.fire("escalation", due, 2) == ["stale"]  # level 1 comes first
    assert incident.fire("escalation", due, 1) == ["fired", "escalated:resolve"]
    level1 = incident.history[-1]
    assert isinstance(level1, Escalated) and level1.request_reassignment
    assert level1.notify_unit is not None and level1.notify_unit.id == "c01"
    clock = incident.clocks().by_name["resolve"]
    nxt = pending_firings("x", clock, POLICY)["escalation"]
    assert nxt is not None and (nxt.step, nxt.repeat) == (2, 0)
    assert incident.fire("escalation", due + timedelta(hours=2), 2)[0] == "fired"
    nxt = pending_firings("x", incident.clocks().by_name["resolve"], POLICY)["escalation"]
    assert nxt is not None and (nxt.step, nxt.repeat) == (2, 1)
    assert nxt.fire_at == due + timedelta(hours=2, minutes=30)
    incident.fire("escalation", due + timedelta(hours=2, minutes=30), 2, 1)
    incident.fire("escalation", due + timedelta(hours=3), 3)  # level 3 overtakes the repeats
    levels = [(e.ladder_level, e.repeat) for e in incident.history if isinstance(e, Escalated)]
    assert levels == [(1, 0), (2, 0), (2, 1), (3, 0)]
    assert pending_firings("x", incident.clocks().by_name["resolve"], POLICY)["escalation"] is None


def test_a_firing_for_a_stopped_or_older_clock_appends_nothing() -> None:
    incident = Incident()
    incident.happen(incident.script.assigned())
    due = incident.clocks().by_name["resolve"].due_at
    incident.happen(incident.script.at(60).resolved())
    assert incident.fire("breach", due) == ["stale"]
    incident.happen(incident.script.at(60).reopened())
    clocks = incident.clocks()
    old = Firing(incident.script.incident_id, "resolve", 1, "breach")
    judged = judge_firing(
        clocks,
        old,
        POLICY,
        due + timedelta(days=9),
        correlation_id="c",
        notify_unit=default_notify_unit,
    )
    assert judged.verdict == "stale" and judged.events == ()


def test_a_half_stored_reaction_is_completed_not_repeated() -> None:
    # A crash after the first of the assignment's events was stored: the walk adds the rest.
    incident = Incident()
    script = incident.script
    assigned = script.assigned()
    incident.history.append(assigned)
    whole = walk(script.incident_id, incident.history, POLICY, CALENDAR.due).missing
    assert types_of(whole) == ["sla_clock_started:accept", "sla_clock_started:resolve"]
    incident.history.append(whole[0])
    rest = walk(script.incident_id, incident.history, POLICY, CALENDAR.due).missing
    assert types_of(rest) == ["sla_clock_started:resolve"]
    assert rest[0].causation_id == assigned.event_id
