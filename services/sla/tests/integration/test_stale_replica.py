"""An assignment whose history is read from a replica that has not applied it yet.

What the 3-node chaos test saw: after a node's death, 1-6 of 450 assignments never got their
clocks. sla read the incident's history with the assignment's stream sequence as a floor, but
nats-server ignored the floor (``min_last_seq``) and a lagging follower answered with the
history before the assignment: the walk owed nothing, the reaction wrote nothing, and the
assignment was acknowledged. The follower is played here on one server (``LaggingReplica``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import nats
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from prometheus_client import CollectorRegistry

from civicgrid.events.incident_events import SlaClockStarted
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.sla.config import SlaConfig
from civicgrid.sla.domain.decide import default_notify_unit
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.handlers import SlaPorts, when_incident_event
from civicgrid.sla.metrics import SlaMetrics
from tests.support.events.lagging_replica import LaggingReplica
from tests.support.sla import FixedPolicies, RecordingTimers
from tests.support.sla_nats import SlaWorld


@pytest_asyncio.fixture
async def own_nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.client_url, name="sla-lagging")
    yield client
    await client.close()


class _Silent:
    async def publish(self, subject: str, payload: bytes) -> None:
        raise AssertionError("an assignment notifies nobody")


async def test_an_assignment_read_from_a_replica_behind_it_still_starts_its_clocks(
    own_nc: NatsClient,
    world: SlaWorld,
    sla_config: SlaConfig,
    test_policy: SlaPolicyVersion,
) -> None:
    script = world.incident()
    await world.append(script.reported())
    assigned = script.assigned()
    at = (
        await world.store.append(assigned, msg_id=assigned.event_id, expected_version=None)
    ).sequence
    lagging = LaggingReplica(own_nc, applied=at - 1, reads=2)
    timers = RecordingTimers()
    ports = SlaPorts(
        store=EventStore(own_nc.jetstream()),
        policies=FixedPolicies(test_policy),
        calendar=sla_config.calendar,
        timers=timers,
        notifier=_Silent(),
        metrics=SlaMetrics.create(CollectorRegistry()),
        notify_unit=default_notify_unit,
    )

    # As sla-clocks' handler calls it: the delivered event's stream sequence is the floor.
    await when_incident_event(assigned, ports, at_least=at)

    started = [e for e in await world.history(script.incident_id) if isinstance(e, SlaClockStarted)]
    assert sorted(e.clock for e in started) == ["accept", "resolve"]
    assert {f.clock for f in timers.armed} == {"accept", "resolve"}
    assert lagging.stale_answers == 2
