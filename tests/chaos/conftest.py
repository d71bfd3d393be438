"""A fresh platform per chaos test: its own nats-server(s), users and service processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.events.waiting import eventually
from tests.support.processes import CLUSTER_NODES, Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    created = Platform.create(tmp_path)
    created.nats.start()
    try:
        created.provision()
        yield created
    finally:
        created.stop()


@pytest_asyncio.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Platform]:
    created = Platform.create(tmp_path, nodes=CLUSTER_NODES)
    created.nats.start()
    try:
        # The first meta leader election takes a moment after the routes connect.
        await eventually(
            lambda: asyncio.to_thread(_provisioned, created),
            within_s=45,
            interval_s=0.5,
            what="streams provisioned on the cluster",
        )
        yield created
    finally:
        created.stop()


def _provisioned(platform: Platform) -> bool:
    try:
        platform.provision()
    except AssertionError:
        return False
    return True
