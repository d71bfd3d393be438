"""sla decides on the histories it has seen whole (its clock view reads the stream; its own
appends follow them) instead of reading them again for every trigger."""

from __future__ import annotations

from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import Cause, decide_and_append
from civicgrid.events.store import EventStore
from civicgrid.servicekit.service import Service
from civicgrid.sla.app import SlaApp
from tests.support.events.waiting import eventually
from tests.support.sla_nats import SlaWorld, labels

from .conftest import StartSla


def history_reads(service: Service, outcome: str) -> float:
    value = service.registry.get_sample_value(
        "civicgrid_history_reads_total", {"service": "sla", "outcome": outcome}
    )
    return value or 0.0


async def write_as_a_service_does(store: EventStore, event: IncidentEvent) -> None:
    """Expecting the incident's last event, as intake and routing decide."""
    await decide_and_append(store, event.incident_id, Cause(f"test:{event.event_id}"),
                            lambda _history: [event])  # fmt: skip


async def view_caught_up(sla: SlaApp) -> bool:
    return sla.view.problem() is None


async def test_clocks_start_and_stop_without_reading_the_history(
    start_sla: StartSla, store: EventStore, world: SlaWorld
) -> None:
    sla = await start_sla()
    # The view follows the whole stream; the test's incident must come after what it holds.
    await eventually(lambda: view_caught_up(sla), what="the clock view caught up")
    script = world.incident()
    incident_id = script.incident_id
    await write_as_a_service_does(store, script.reported())
    await write_as_a_service_does(store, script.assigned())
    await world.wait_for(incident_id, "sla_clock_started:accept")
    accepted = script.accepted()
    await write_as_a_service_does(store, accepted)
    [stopped] = await world.wait_for(incident_id, "sla_clock_stopped:accept")
    assert stopped.causation_id == accepted.event_id

    assert labels(await world.history(incident_id))[:4] == [
        "reported",
        "assigned",
        "sla_clock_started:accept",
        "sla_clock_started:resolve",
    ]
    # Both triggers decided on what was held: `reported` from the view, the rest from the
    # deliveries and sla's own appends.
    assert history_reads(sla.service, "hit") == 2
    assert history_reads(sla.service, "miss") == 0
    assert sla.service.decisions.version_of(incident_id) is not None

    # Nothing of this incident may fire into a later test's service.
    await world.append((await world.now(script)).closed())

    async def no_schedule_left() -> bool:
        return not await world.pending(incident_id)

    await eventually(no_schedule_left, what="the closed incident's schedules cancelled")
