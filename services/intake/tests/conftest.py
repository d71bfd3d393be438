"""Intake started once against the session's real nats-server, and clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from civicgrid.intake.app import IntakeApp, compose
from civicgrid.intake.catalogue import InMemoryCatalogue
from civicgrid.intake.config import IntakeConfig
from civicgrid.servicekit.apicheck import serving
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.waiting import eventually
from tests.support.intake import (
    DEV_KEY,
    GRID,
    LIMITED_KEY,
    MAX_BODY_BYTES,
    OPEN311_KEY,
    THROTTLED_KEY,
    intake_settings,
    keys,
    rights,
    small_city,
)


@pytest.fixture(scope="session")
def catalogue() -> InMemoryCatalogue:
    return small_city()


@pytest_asyncio.fixture(scope="session")
async def intake(
    nats_server: EmbeddedNats, nc: NatsClient, catalogue: InMemoryCatalogue
) -> AsyncIterator[IntakeApp]:
    app = compose(
        intake_settings(nats_server.client_url),
        catalogue=catalogue,
        keys=keys(
            **{
                LIMITED_KEY: rights(
                    "limited", channels=("citizen_app",), commands=("accept",), units=(GRID.id,)
                ),
                THROTTLED_KEY: rights("throttled", channels=("*",), per_minute=1, burst=2),
                OPEN311_KEY: rights("open311-client", channels=("open311",)),
            }
        ),
        config=IntakeConfig(dev_api_key=None, api_keys_file=None, max_body_bytes=MAX_BODY_BYTES),
    )
    await app.service.start()

    async def ready() -> bool:
        return not await app.service.problems()

    await eventually(ready, what="intake ready")
    yield app
    await app.service.stop()


@pytest_asyncio.fixture(scope="session")
async def http(intake: IntakeApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=intake.service.http)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://intake", headers={"X-API-Key": DEV_KEY}
    ) as client:
        yield client


@pytest_asyncio.fixture(scope="session")
async def served_root(intake: IntakeApp) -> AsyncIterator[str]:
    """Intake on a real socket, for clients that need one (georeport, schemathesis)."""
    async with serving(intake.service.http) as base_url:
        yield base_url
