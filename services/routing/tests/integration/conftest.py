"""Routing services against the session's real nats-server and the shipped city.

Each test gets its own durable consumer (starting at new messages, so other tests' incidents in
the shared stream are not routed) and its own policy bucket (so publishing a version in one
test does not change another's).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType

from civicgrid.events import streams
from civicgrid.events.consumer import ConsumerSpec
from civicgrid.events.store import EventStore
from civicgrid.routing.app import CONSUMER, build
from civicgrid.routing.config import RoutingConfig, load_routing_config
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.routing import Incidents, StartRouting


@pytest.fixture(scope="session")
def routing_config() -> RoutingConfig:
    return load_routing_config(None)


@pytest_asyncio.fixture
async def policy_bucket(js: JetStreamContext) -> AsyncIterator[str]:
    bucket = f"ROUTING_POLICY_T{uuid.uuid4().hex[:12]}"
    await js.create_key_value(KeyValueConfig(bucket=bucket, history=64, storage=StorageType.MEMORY))
    yield bucket
    await js.delete_key_value(bucket)


@pytest_asyncio.fixture
async def start_routing(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    routing_config: RoutingConfig,
    policy_bucket: str,
) -> AsyncIterator[StartRouting]:
    """Starts routing replicas sharing one durable consumer; all stopped after the test."""
    durable = f"routing-{uuid.uuid4().hex[:10]}"
    # The routing consumer, but starting at messages published after it is created.
    spec = ConsumerSpec(
        service="routing",
        durable=durable,
        filter_subjects=CONSUMER.filter_subjects,
        backoff_s=(0.05, 0.1),
        deliver_policy=DeliverPolicy.NEW,
    )
    started: list[Service] = []

    async def start() -> Service:
        settings = ServiceSettings(
            service="routing",
            nats_url=nats_server.client_url,
            http_host="127.0.0.1",
            http_port=8082,
            config_dir=None,
            log_level="WARNING",
            instance=f"routing-test-{len(started) + 1}",
            stream_replicas=1,
        )
        service = build(
            settings,
            config=routing_config,
            consumer=spec,
            policy_bucket=policy_bucket,
            policy_refresh_s=0.0,
        )
        await service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        await service.stop()
    if started:
        await js.delete_consumer(streams.INCIDENTS, durable)


@pytest.fixture
def incidents(store: EventStore, routing_config: RoutingConfig) -> Incidents:
    return Incidents(store, routing_config)
