"""``civicgrid up``'s embedded nats-server: started without blocking the event loop, and
restarted when it dies, a failed restart said and retried with back-off until it works."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio

from civicgrid.cli.supervisor import Supervisor
from civicgrid.cli.up import keep_nats_running
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from tests.support.events.waiting import eventually


class Said:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: str) -> None:
        self.lines.append(message)

    def count(self, text: str) -> int:
        return sum(text in line for line in self.lines)


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedNats]:
    embedded = EmbeddedNats(data_dir=tmp_path / "nats", port=free_port())
    yield embedded
    embedded.stop()


async def test_starting_nats_server_leaves_the_event_loop_running(
    server: EmbeddedNats, tmp_path: Path
) -> None:
    turns = 0

    async def turn_the_loop() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    turning = asyncio.create_task(turn_the_loop())
    try:
        await server.start_async(log_file=tmp_path / "nats.log", die_with_parent=True)
        turns_while_starting = turns
    finally:
        turning.cancel()
    assert turns_while_starting > 0, "the loop stood still while nats-server started"
    client = await nats.connect(server.client_url)
    await client.close()


@pytest.mark.timeout(60)
async def test_a_failed_restart_is_said_and_retried_with_back_off_until_it_works(
    server: EmbeddedNats, tmp_path: Path
) -> None:
    log_file = tmp_path / "nats.log"
    await server.start_async(log_file=log_file, die_with_parent=True)
    said = Said()
    supervisor = Supervisor([], said)
    keeper = asyncio.create_task(keep_nats_running(server, supervisor, log_file))
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # Past a connection of the killed server in TIME_WAIT; a listening nats-server still
    # conflicts.
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        server.kill()
        # Before the keeper gets a turn of the loop: its restart finds the port taken.
        squatter.bind((server.host, server.port))
        squatter.listen()

        async def retried_twice() -> bool:
            return said.count("nats-server restart failed") >= 2

        await eventually(retried_twice, within_s=20, what=f"two failed restarts said: {said.lines}")
        failures = [line for line in said.lines if "restart failed" in line]
        delays = [int(m[1]) for line in failures if (m := re.search(r"retrying in (\d+)s", line))]
        assert delays[1] == 2 * delays[0], f"no back-off: {failures}"
        assert not keeper.done(), "the keeper gave up"
        squatter.close()

        async def restarted() -> bool:
            return said.count("nats-server restarted") == 1

        await eventually(restarted, within_s=20, what=f"nats-server restarted: {said.lines}")
        client = await nats.connect(server.client_url)
        await client.close()
    finally:
        squatter.close()
        supervisor.request_stop()
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
