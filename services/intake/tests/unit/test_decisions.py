"""Every command against the incident's state: what it writes, and what it refuses and why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from civicgrid.events.base import Actor, ActorKind, UnitKind, UnitRef
from civicgrid.events.incident_events import (
    Assigned,
    HandlingLevel,
    Jurisdiction,
    Merged,
    ReturnReason,
    SlaClassOrdered,
    SlaClockResumed,
    SlaClockStarted,
    SlaClockStopped,
)
from civicgrid.intake.domain.commands import (
    Accept,
    Arrive,
    Callback,
    Close,
    Command,
    Extend,
    Merge,
    Reassign,
    Reclassify,
    Reopen,
    Resolve,
    Resume,
    Return,
    Suspend,
)
from civicgrid.intake.domain.decisions import (
    CommandRejected,
    Context,
    close_merged_source,
    decide,
    decide_merge,
)
from civicgrid.intake.domain.state import IncidentState, Stage, apply, fold
from tests.support.events.factories import reported
from tests.support.intake import COMMAND_CENTRE, DEPARTMENT, GRID, OTHER_GRID

NOW = datetime(2026, 9, 24, 2, 0, tzinfo=UTC)
ROUTING = Actor(kind=ActorKind.SERVICE, id="routing")


def context(causation: str = "cmd:tests:1") -> Context:
    return Context(causation_id=causation, correlation_id="corr", now=NOW, system="tests")


def new_incident(incident_id: str = "INC1") -> IncidentState:
    return fold(incident_id, [reported(incident_id, occurred_at=NOW - timedelta(hours=1))])


def assignment(
    lead: UnitRef = GRID, *, on_site: bool = False, incident_id: str = "INC1", number: int = 1
) -> Assigned:
    return Assigned(
        incident_id=incident_id,
        source="routing",
        actor=ROUTING,
        correlation_id="corr",
        level=HandlingLevel.GRID,
        lead_unit=lead,
        sla_class="standard",
        on_site=on_site,
        jurisdiction=Jurisdiction(grid_id=lead.id),
        rule="r",
        policy_version=1,
        explanation="e",
        assignment_no=number,
    )


def assigned(
    lead: UnitRef = GRID, *, on_site: bool = False, incident_id: str = "INC1"
) -> IncidentState:
    event = assignment(lead, on_site=on_site, incident_id=incident_id)
    return apply(new_incident(incident_id), event)


def run(state: IncidentState, *commands: Command) -> IncidentState:
    for n, command in enumerate(commands):
        for event in decide(state, command, context(f"cmd:tests:{n}")):
            state = apply(state, event)
    return state


def with_clock(state: IncidentState, clock: str, due: datetime) -> IncidentState:
    return apply(
        state,
        SlaClockStarted(
            incident_id=state.incident_id,
            source="sla",
            actor=Actor(kind=ActorKind.SERVICE, id="sla"),
            correlation_id="corr",
            clock=clock,
            sla_class="standard",
            started_at=NOW,
            due_at=due,
            warn_at=due,
            clock_version=1,
        ),
    )


def refused(state: IncidentState, command: Command) -> str:
    with pytest.raises(CommandRejected) as caught:
        decide(state, command, context())
    return caught.value.reason


def types(state: IncidentState, command: Command) -> list[str]:
    return [event.event_type for event in decide(state, command, context())]


accepted_state = run(assigned(), Accept(unit=GRID))


def test_the_assigned_lead_unit_accepts() -> None:
    events = decide(assigned(), Accept(unit=GRID), context())
    assert [e.event_type for e in events] == ["accepted"]
    assert events[0].causation_id == "cmd:tests:1"
    assert events[0].actor == Actor(kind=ActorKind.UNIT, id=GRID.id)


def test_accept_is_refused_before_assignment_by_another_unit_and_twice() -> None:
    assert "not assigned" in refused(new_incident(), Accept(unit=GRID))
    assert "not the assigned lead unit" in refused(assigned(), Accept(unit=OTHER_GRID))
    assert "already accepted" in refused(accepted_state, Accept(unit=GRID))


def test_a_command_on_an_incident_that_does_not_exist_is_refused() -> None:
    assert "does not exist" in refused(IncidentState("NOPE"), Accept(unit=GRID))


def test_arrival_after_acceptance_only_once() -> None:
    assert types(accepted_state, Arrive(unit=GRID)) == ["arrived"]
    assert "accepted before arrival" in refused(assigned(), Arrive(unit=GRID))
    arrived = run(accepted_state, Arrive(unit=GRID))
    assert "already recorded" in refused(arrived, Arrive(unit=GRID))


def test_a_return_puts_the_incident_back_to_routing() -> None:
    command = Return(unit=GRID, reason_code=ReturnReason.WRONG_JURISDICTION)
    state = run(accepted_state, command)
    assert state.stage is Stage.AWAITING_ASSIGNMENT
    assert state.lead_unit is None and state.returns == 1
    assert "not assigned" in refused(state, Accept(unit=GRID))


def test_a_return_needs_the_lead_unit_and_a_note_for_other() -> None:
    other = Return(unit=GRID, reason_code=ReturnReason.OTHER)
    assert "needs a note" in refused(accepted_state, other)
    not_lead = Return(unit=OTHER_GRID, reason_code=ReturnReason.NOT_OUR_DUTY)
    assert "not the assigned lead unit" in refused(accepted_state, not_lead)
    resolved = run(accepted_state, Resolve(unit=GRID, resolution="done"))
    assert "already resolved" in refused(
        resolved, Return(unit=GRID, reason_code=ReturnReason.OTHER, note="x")
    )


def test_suspend_pauses_handling_until_resumed() -> None:
    suspended = run(accepted_state, Suspend(unit=GRID, reason="waiting for the citizen"))
    assert suspended.suspended
    assert "resume it first" in refused(suspended, Resolve(unit=GRID, resolution="done"))
    assert "already suspended" in refused(suspended, Suspend(unit=GRID, reason="again"))
    assert types(suspended, Resume(unit=COMMAND_CENTRE)) == ["resumed"]
    assert not run(suspended, Resume(unit=GRID)).suspended


def test_suspend_needs_acceptance_and_resume_needs_a_suspension() -> None:
    assert "only an accepted incident" in refused(assigned(), Suspend(unit=GRID, reason="x"))
    assert "not suspended" in refused(accepted_state, Resume(unit=GRID))


def test_an_extension_needs_an_approver_a_running_clock_and_a_later_future_deadline() -> None:
    due = NOW + timedelta(hours=2)
    state = with_clock(accepted_state, "resolve", due)
    later = NOW + timedelta(days=2)
    ok = Extend(approved_by=DEPARTMENT, clock="resolve", new_due_at=later, reason="parts ordered")
    assert types(state, ok) == ["deadline_extended"]
    assert run(state, ok).resolve_due_at == later
    by_grid = ok.model_copy(update={"approved_by": GRID})
    assert "command centre or a department" in refused(state, by_grid)
    assert "not running" in refused(accepted_state, ok)
    past = ok.model_copy(update={"new_due_at": NOW - timedelta(minutes=1)})
    assert "in the future" in refused(state, past)
    earlier = ok.model_copy(update={"new_due_at": NOW + timedelta(hours=1)})
    assert "later than the current one" in refused(state, earlier)


def test_a_stopped_clock_cannot_be_extended() -> None:
    state = with_clock(accepted_state, "accept", NOW + timedelta(minutes=30))
    state = apply(
        state,
        SlaClockStopped(
            incident_id="INC1",
            source="sla",
            actor=Actor(kind=ActorKind.SERVICE, id="sla"),
            correlation_id="corr",
            clock="accept",
            reason="met",
            clock_version=1,
        ),
    )
    command = Extend(
        approved_by=COMMAND_CENTRE, clock="accept", new_due_at=NOW + timedelta(days=1), reason="r"
    )
    assert "not running" in refused(state, command)


def test_resolve_needs_acceptance_and_for_an_on_site_matter_arrival() -> None:
    assert types(accepted_state, Resolve(unit=GRID, resolution="filled")) == ["resolved"]
    assert "accepted before" in refused(assigned(), Resolve(unit=GRID, resolution="x"))
    on_site = run(assigned(on_site=True), Accept(unit=GRID))
    assert "arrival on site" in refused(on_site, Resolve(unit=GRID, resolution="x"))
    arrived = run(on_site, Arrive(unit=GRID))
    assert types(arrived, Resolve(unit=GRID, resolution="cleared")) == ["resolved"]


resolved_state = run(accepted_state, Resolve(unit=GRID, resolution="filled"))


def test_a_satisfied_callback_is_recorded_once() -> None:
    assert types(resolved_state, Callback(satisfied=True, rating=5)) == ["callback_recorded"]
    called = run(resolved_state, Callback(satisfied=True, rating=5))
    assert "already recorded" in refused(called, Callback(satisfied=True, rating=4))
    assert "after resolution" in refused(accepted_state, Callback(satisfied=True, rating=5))


def test_a_dissatisfied_callback_reopens_the_incident() -> None:
    command = Callback(satisfied=False, rating=1, comment="still there")
    assert types(resolved_state, command) == ["callback_recorded", "reopened"]
    assert run(resolved_state, command).stage is Stage.AWAITING_ASSIGNMENT


def test_close_after_resolution_and_never_twice() -> None:
    assert types(resolved_state, Close()) == ["closed"]
    closed = run(resolved_state, Close())
    assert "already" in refused(closed, Close())


def test_only_the_command_centre_closes_an_unresolved_incident_and_with_a_reason() -> None:
    assert "only the command centre" in refused(accepted_state, Close(unit=GRID, reason="x"))
    assert "needs a reason" in refused(accepted_state, Close(unit=COMMAND_CENTRE))
    assert types(accepted_state, Close(unit=COMMAND_CENTRE, reason="false alarm")) == ["closed"]


def test_reopen_after_resolution_or_closure_by_the_citizen() -> None:
    closed = run(resolved_state, Close())
    events = decide(closed, Reopen(reason="it is back"), context())
    assert [e.event_type for e in events] == ["reopened"]
    assert events[0].actor.kind is ActorKind.CITIZEN
    assert "only a resolved or closed" in refused(accepted_state, Reopen(reason="why"))


def test_only_the_command_centre_reassigns_and_not_after_resolution() -> None:
    command = Reassign(unit=COMMAND_CENTRE, reason="final ruling", to_unit=DEPARTMENT)
    assert types(accepted_state, command) == ["reassigned"]
    assert run(accepted_state, command).lead_unit is None
    assert "only the command centre" in refused(accepted_state, Reassign(unit=GRID, reason="x"))
    assert "already resolved" in refused(resolved_state, command)


def test_a_merge_closes_the_source_and_joins_its_report_to_the_target() -> None:
    source = new_incident("SRC")
    target = assigned(incident_id="TGT")
    (merged,) = decide_merge(
        source, target, Merge(unit=COMMAND_CENTRE, into_incident_id="TGT"), context()
    )
    assert isinstance(merged, Merged) and merged.from_incident_id == "SRC"
    assert "SRC" in apply(target, merged).merged_from
    (closed,) = close_merged_source(source, merged)
    assert closed.event_type == "closed" and closed.merged_into == "TGT"  # type: ignore[attr-defined]
    assert closed.causation_id == merged.event_id
    after = apply(source, closed)
    assert close_merged_source(after, merged) == []
    assert after.stage is Stage.CLOSED and after.merged_into == "TGT"
    assert "merged into TGT" in refused(after, Reopen(reason="again"))


def test_a_merge_is_refused_by_others_into_itself_and_into_a_closed_incident() -> None:
    source, target = new_incident("SRC"), new_incident("TGT")
    by_grid = Merge(unit=GRID, into_incident_id="TGT")
    with pytest.raises(CommandRejected, match="only the command centre"):
        decide_merge(source, target, by_grid, context())
    with pytest.raises(CommandRejected, match="into itself"):
        decide_merge(source, source, Merge(unit=COMMAND_CENTRE, into_incident_id="SRC"), context())
    closed_target = run(
        assigned(incident_id="TGT"), Close(unit=COMMAND_CENTRE, reason="duplicate call")
    )
    with pytest.raises(CommandRejected, match="TGT: incident is closed"):
        decide_merge(
            source, closed_target, Merge(unit=COMMAND_CENTRE, into_incident_id="TGT"), context()
        )
    with pytest.raises(CommandRejected, match="does not exist"):
        decide_merge(
            source,
            IncidentState("TGT"),
            Merge(unit=COMMAND_CENTRE, into_incident_id="TGT"),
            context(),
        )


def test_a_late_assignment_does_not_reopen_a_closed_incident() -> None:
    closed = run(resolved_state, Close())
    again = apply(
        closed,
        Assigned(
            incident_id="INC1",
            source="routing",
            actor=ROUTING,
            correlation_id="corr",
            level=HandlingLevel.GRID,
            lead_unit=OTHER_GRID,
            sla_class="standard",
            on_site=False,
            jurisdiction=Jurisdiction(),
            rule="r",
            policy_version=1,
            explanation="e",
            assignment_no=2,
        ),
    )
    assert again.stage is Stage.CLOSED


def test_units_are_compared_by_kind_and_id_not_name() -> None:
    renamed = UnitRef(kind=UnitKind.GRID, id=GRID.id, name="another spelling")
    assert types(assigned(), Accept(unit=renamed)) == ["accepted"]


def test_a_resumed_sla_clock_moves_the_resolve_due_time() -> None:
    due = NOW + timedelta(hours=2)
    state = with_clock(accepted_state, "resolve", due)
    resumed = SlaClockResumed(
        incident_id=state.incident_id,
        source="sla",
        actor=Actor(kind=ActorKind.SERVICE, id="sla"),
        correlation_id="corr",
        clock="resolve",
        clock_version=1,
        due_at=due + timedelta(minutes=30),
        paused_s=1800,
    )
    assert apply(state, resumed).resolve_due_at == due + timedelta(minutes=30)


def order(sla_class: str, unit: UnitRef = COMMAND_CENTRE) -> Reclassify:
    return Reclassify(unit=unit, sla_class=sla_class, reason="the district asked for it")


def test_the_command_centre_orders_a_class_and_the_state_runs_under_it() -> None:
    [event] = decide(assigned(), order("difficult"), context())
    assert isinstance(event, SlaClassOrdered)
    assert (event.sla_class, event.previous_class) == ("difficult", "standard")
    assert event.ordered_by == COMMAND_CENTRE and event.reason == "the district asked for it"
    assert event.actor == Actor(kind=ActorKind.UNIT, id=COMMAND_CENTRE.id)
    state = apply(assigned(), event)
    assert state.sla_class == "difficult"
    # A later assignment (the matter's class again) does not undo the order.
    again = apply(state, assignment(OTHER_GRID, number=2))
    assert again.sla_class == "difficult" and again.assigned_class == "standard"


def test_a_class_order_is_refused_by_others_when_finished_and_for_the_same_class() -> None:
    assert "only the command centre" in refused(assigned(), order("urgent", unit=GRID))
    assert "already in SLA class 'standard'" in refused(assigned(), order("standard"))
    ordered = run(assigned(), order("urgent"))
    assert "already in SLA class 'urgent'" in refused(ordered, order("urgent"))
    resolved = run(assigned(), Accept(unit=GRID), Resolve(unit=GRID, resolution="done"))
    assert "already resolved" in refused(resolved, order("urgent"))
    closed = run(resolved, Close())
    assert "closed" in refused(closed, order("urgent"))


def test_a_class_may_be_ordered_before_the_first_assignment() -> None:
    assert types(new_incident(), order("urgent")) == ["sla_class_ordered"]
