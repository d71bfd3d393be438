"""The ladder and routing interlock: a level with ``reassign`` asks routing to move the incident
up; routing's new assignment supersedes ``accept`` and starts it again for the new unit."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest_asyncio
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType

from civicgrid.events import streams
from civicgrid.events.consumer import ConsumerSpec
from civicgrid.events.incident_events import Assigned, Escalated, SlaClockStarted
from civicgrid.events.store import EventStore
from civicgrid.routing.app import CONSUMER as ROUTING_CONSUMER
from civicgrid.routing.app import build as build_routing
from civicgrid.routing.config import load_routing_config
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.events.waiting import eventually
from tests.support.routing import Incidents
from tests.support.sla_nats import SlaWorld

from .conftest import StartSla


@pytest_asyncio.fixture
async def routing(nats_server: EmbeddedNats, js: JetStreamContext) -> AsyncIterator[Service]:
    bucket = f"ROUTING_POLICY_S{uuid.uuid4().hex[:10]}"
    await js.create_key_value(KeyValueConfig(bucket=bucket, history=8, storage=StorageType.MEMORY))
    durable = f"routing-{uuid.uuid4().hex[:10]}"
    settings = ServiceSettings(
        service="routing",
        nats_url=nats_server.client_url,
        http_host="127.0.0.1",
        http_port=8082,
        config_dir=None,
        log_level="WARNING",
        instance="routing-for-sla",
        stream_replicas=1,
    )
    service = build_routing(
        settings,
        config=load_routing_config(None),
        consumer=ConsumerSpec(
            service="routing",
            durable=durable,
            filter_subjects=ROUTING_CONSUMER.filter_subjects,
            backoff_s=(0.05, 0.2),
            deliver_policy=DeliverPolicy.NEW,
        ),
        policy_bucket=bucket,
    )
    await service.start()
    yield service
    await service.stop()
    await js.delete_consumer(streams.INCIDENTS, durable)
    await js.delete_key_value(bucket)


async def test_a_whistle_moves_the_incident_up_and_accept_restarts_for_the_new_unit(
    start_sla: StartSla, routing: Service, store: EventStore, world: SlaWorld
) -> None:
    await start_sla()
    incidents = Incidents(store, load_routing_config(None))
    grid = incidents.city.city.grids[0]
    report = await incidents.report(incidents.matter_at("grid"), incidents.point_in(grid.id))
    incident_id = report.incident_id
    [first] = await incidents.wait_for(incident_id, 1)
    # accept (3 s) breaches; its level 1 (reassign) is the whistle.
    whistles = await world.wait_for(incident_id, "escalated:accept", 1, within_s=20)
    whistle = whistles[0]
    assert isinstance(whistle, Escalated) and whistle.request_reassignment
    moved = await incidents.wait_for(incident_id, 2, within_s=20)
    second = next(a for a in moved if a.causation_id == whistle.event_id)
    assert isinstance(second, Assigned) and second.lead_unit != first.lead_unit

    async def restarted() -> SlaClockStarted | None:
        return next(
            (
                e
                for e in await world.sla_events(incident_id)
                if isinstance(e, SlaClockStarted)
                and e.clock == "accept"
                and e.causation_id == second.event_id
            ),
            None,
        )

    accept2 = await eventually(restarted, within_s=15, what="accept restarted for the new unit")
    assert accept2.unit == second.lead_unit and accept2.clock_version == 2
    events = await world.sla_events(incident_id)
    superseded = [
        e
        for e in events
        if e.event_type == "sla_clock_stopped" and e.causation_id == second.event_id
    ]
    assert [getattr(e, "clock_version", None) for e in superseded if e.clock == "accept"] == [1]  # type: ignore[attr-defined]
