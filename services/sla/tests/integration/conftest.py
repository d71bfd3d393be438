"""sla services against the session's real nats-server, with a second-scale test policy.

Each test gets its own policy bucket and its own durables starting at new messages, so other
tests' incidents and firings in the shared streams do not reach it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import pytest_asyncio
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType

from civicgrid.events import streams
from civicgrid.events.consumer import ConsumerSpec
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from civicgrid.sla.app import SlaApp, compose
from civicgrid.sla.config import SlaConfig, load_sla_config
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.policy_store import publish_policy
from tests.support.sla import beyond_the_holiday_data, fresh_durables, policy, rung
from tests.support.sla_nats import SlaWorld

StartSla = Callable[..., Awaitable[SlaApp]]

SECOND_SCALE = policy(
    accept="3s",
    arrive="4s",
    resolve="5s",
    warnings=(0.5,),
    ladder=(
        rung("community-head", "0s", "community_head", reassign=True),
        rung("department-head", "1s", "department_head"),
    ),
)


@pytest.fixture(scope="session")
def sla_config() -> SlaConfig:
    # A fixed start date: the start-up check of the current year is tested on its own.
    shipped = load_sla_config(None, now=datetime(2026, 6, 1, tzinfo=UTC))
    return beyond_the_holiday_data(shipped)


@pytest.fixture
def test_policy() -> SlaPolicyVersion:
    return SECOND_SCALE


@pytest_asyncio.fixture
async def policy_bucket(js: JetStreamContext, test_policy: SlaPolicyVersion) -> AsyncIterator[str]:
    bucket = f"SLA_POLICY_T{uuid.uuid4().hex[:12]}"
    await js.create_key_value(KeyValueConfig(bucket=bucket, history=64, storage=StorageType.MEMORY))
    await publish_policy(js, test_policy, bucket=bucket)
    yield bucket
    await js.delete_key_value(bucket)


@pytest.fixture
def durables() -> tuple[ConsumerSpec, ConsumerSpec]:
    suffix = uuid.uuid4().hex[:10]
    return fresh_durables(suffix)


def sla_settings(url: str, instance: str) -> ServiceSettings:
    return ServiceSettings(
        service="sla",
        nats_url=url,
        http_host="127.0.0.1",
        http_port=8083,
        config_dir=None,
        log_level="WARNING",
        instance=instance,
        stream_replicas=1,
    )


@pytest_asyncio.fixture
async def start_sla(
    nats_server: EmbeddedNats,
    js: JetStreamContext,
    sla_config: SlaConfig,
    policy_bucket: str,
    durables: tuple[ConsumerSpec, ConsumerSpec],
) -> AsyncIterator[StartSla]:
    started: list[Service] = []

    async def start(**options: Any) -> SlaApp:
        clocks, fired = durables
        app = compose(
            sla_settings(nats_server.client_url, f"sla-test-{len(started) + 1}"),
            config=sla_config,
            clocks_consumer=clocks,
            timers_consumer=fired,
            policy_bucket=policy_bucket,
            policy_refresh_s=0.0,
            **options,
        )
        await app.service.start()
        started.append(app.service)
        return app

    yield start
    for service in started:
        await service.stop()
    if started:
        clocks, fired = durables
        await js.delete_consumer(streams.INCIDENTS, clocks.durable)
        await js.delete_consumer(streams.SLA_TIMERS, fired.durable)


@pytest.fixture
def world(store: EventStore, js: JetStreamContext) -> SlaWorld:
    return SlaWorld(store, js)
