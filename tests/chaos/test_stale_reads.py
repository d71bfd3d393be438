"""Reads that decide, on a 3-node cluster with R3 streams, from a follower that lags for real.

A follower is paused (SIGSTOP) while the leader and the other follower commit an event, and
history reads sent through the paused follower wait in its socket; after a pause of a second
it resumes and routes them, and those it answers itself it answers before it has applied
what it missed. (After a shorter pause it had caught up before answering, in trials here; the
first pause of a run rarely gave a stale answer, later ones did in 4 of 5.) A command refused
on such an answer, or a reaction deciding on it, would be wrong: "not accepted yet" for an
accepted incident. Before the store checked replicas' positions itself, 4-7 of every 20 reads
of a trial were stale.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import nats
import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from civicgrid.events.base import IncidentEvent
from civicgrid.events.decide import Cause, Decided, decide_and_append
from civicgrid.events.incident_events import Accepted
from civicgrid.events.store import EventStore, History
from civicgrid.events.streams import INCIDENTS
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.seeds import NatsSeeds
from tests.support.events.factories import accepted, reported
from tests.support.events.waiting import eventually
from tests.support.processes import Platform

TRIALS = 4
READS = 12  # at once, through the paused follower; it answers about a third of them itself
PAUSE_S = 1.0
MISSED = 200  # writes the follower misses besides the one that matters

T = TypeVar("T")


@dataclass
class Nodes:
    leader: EventStore
    follower: EventStore
    follower_nc: NatsClient
    follower_server: EmbeddedNats
    writer_nc: NatsClient

    async def read_while_the_follower_catches_up(
        self, write: Callable[[], Awaitable[int]], read: Callable[[int], Awaitable[T]]
    ) -> list[T]:
        """Pause the follower; ``write`` (returning its sequence) and ``MISSED`` others are
        committed without it; ``READS`` reads are sent through it; it resumes after
        ``PAUSE_S``."""
        process = self.follower_server.process
        assert process is not None
        process.send_signal(signal.SIGSTOP)
        try:
            written = await write()
            js = self.writer_nc.jetstream()
            await asyncio.gather(
                *(js.publish(f"incident.MISSED{n % 40}.noted", b"{}") for n in range(MISSED))
            )
            published = self.follower_nc.stats["out_msgs"]
            reads = [asyncio.ensure_future(read(written)) for _ in range(READS)]

            async def sent() -> bool:
                # Published, and flushed from the client's buffer to the socket.
                ready = self.follower_nc.stats["out_msgs"] >= published + READS
                return ready and self.follower_nc._pending_data_size == 0

            await eventually(sent, within_s=5, interval_s=0.005, what="the reads on the wire")
            await asyncio.sleep(PAUSE_S)  # the fault: the follower stays away that long
        finally:
            process.send_signal(signal.SIGCONT)
        return list(await asyncio.gather(*reads))


@pytest_asyncio.fixture
async def nodes(cluster: Platform) -> AsyncIterator[Nodes]:
    options = NatsSeeds.parse(cluster.admin_seeds()).connect_options()
    admin = await nats.connect(**options)
    info = await admin.jetstream().stream_info(INCIDENTS)
    await admin.close()
    assert info.cluster is not None and info.cluster.leader is not None
    by_name = {f"civicgrid-{s.port}": s for s in cluster.nats.servers}
    leader = by_name[info.cluster.leader]
    follower = next(s for s in cluster.nats.servers if s is not leader)
    # Each client dials one node only, so what it asks is answered by that node if it can.
    writer_nc = await nats.connect(**{**options, "servers": [leader.client_url]})
    follower_nc = await nats.connect(
        **{**options, "servers": [follower.client_url]}, allow_reconnect=False
    )
    try:
        yield Nodes(
            EventStore(writer_nc.jetstream()),
            EventStore(follower_nc.jetstream()),
            follower_nc,
            follower,
            writer_nc,
        )
    finally:
        await follower_nc.close()
        await writer_nc.close()


async def _reported(nodes: Nodes) -> tuple[str, int]:
    """A new incident, applied on the follower too."""
    first = reported()
    version = (await nodes.leader.append(first, msg_id=first.event_id, expected_version=0)).sequence

    async def on_the_follower() -> bool:
        return len(await nodes.follower.load(first.incident_id)) == 1

    await eventually(on_the_follower, within_s=10, what="the report on the follower")
    return first.incident_id, version


def _acceptance(nodes: Nodes, incident_id: str, version: int) -> Callable[[], Awaitable[int]]:
    async def accept() -> int:
        event = accepted(incident_id)
        written = await nodes.leader.append(event, msg_id=event.event_id, expected_version=version)
        return written.sequence

    return accept


def _needs_acceptance(history: History) -> list[IncidentEvent]:
    """A handler's command refused until the incident was accepted (here a no-op after)."""
    if not any(isinstance(event, Accepted) for event in history):
        raise ValueError("not accepted yet")
    return []


@pytest.mark.timeout(120)
async def test_a_command_is_not_refused_on_a_followers_stale_history(nodes: Nodes) -> None:
    for trial in range(TRIALS):
        incident_id, version = await _reported(nodes)

        def command(_: int, incident_id: str = incident_id) -> Awaitable[Decided]:
            cause = Cause(f"cmd:test:{incident_id}")
            return decide_and_append(nodes.follower, incident_id, cause, _needs_acceptance)

        outcomes = await nodes.read_while_the_follower_catches_up(
            _acceptance(nodes, incident_id, version), command
        )
        # decide_and_append raised "not accepted yet" on a stale read before.
        assert all(not decided.written for decided in outcomes), f"trial {trial}"


@pytest.mark.timeout(120)
async def test_a_reaction_reads_at_least_the_event_it_reacts_to(nodes: Nodes) -> None:
    for trial in range(TRIALS):
        incident_id, version = await _reported(nodes)

        def react(at: int, incident_id: str = incident_id) -> Awaitable[History]:
            return nodes.follower.load(incident_id, at_least=at)

        histories = await nodes.read_while_the_follower_catches_up(
            _acceptance(nodes, incident_id, version), react
        )
        stale = [h.version for h in histories if len(h) != 2]
        assert not stale, f"trial {trial}: histories without the event reacted to: {stale}"
