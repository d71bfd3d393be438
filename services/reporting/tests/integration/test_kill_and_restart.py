"""The service as a real process, killed with SIGKILL while events flow, then restarted: the
figures equal a plain-Python recount of every event, none lost and none counted twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from civicgrid.events import streams, wire
from civicgrid.events.incident_events import HandlingLevel
from civicgrid.reporting.facts import IncidentFact, project
from civicgrid.reporting.figures import Dimension
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.waiting import eventually
from tests.support.reporting.lives import Life
from tests.support.reporting.process import ReportingProcess
from tests.support.reporting.recount import recount

START = datetime.now(UTC) - timedelta(days=1)


def lives(community: str, count: int) -> list[Life]:
    made = []
    for n in range(count):
        life = Life(f"k{uuid.uuid4().hex[:12]}", START, community=community, grid=f"{community}-g1")
        life.report().assign(1, HandlingLevel.GRID if n % 3 else HandlingLevel.DEPARTMENT)
        life.clock(1, "accept", 31).accept(5 + n % 40).met(5 + n % 40, "accept")
        if n % 4:
            life.resolve(60).close(90)
        if n % 7 == 0:
            life.reopen(100)
        made.append(life)
    return made


@pytest.fixture
def reporting_process(
    nats_server: EmbeddedNats, tmp_path: Path, database_url: str
) -> Iterator[ReportingProcess]:
    process = ReportingProcess(nats_server.client_url, tmp_path, database_url)
    yield process
    process.stop()


async def test_kill_9_while_events_flow_then_restart_gives_exact_figures(
    js: JetStreamContext, reporting_process: ReportingProcess
) -> None:
    community = f"k{uuid.uuid4().hex[:8]}"
    events = [event for life in lives(community, 150) for event in life.events]
    sequences: dict[str, int] = {}

    async def publish(part: list[Any]) -> int:
        last = 0
        for event in part:
            ack = await js.publish(
                wire.event_subject(event),
                wire.encode(event),
                stream=streams.INCIDENTS,
                headers=wire.cloudevents_headers(event),
            )
            sequences[event.event_id] = last = ack.seq
        return last

    third = len(events) // 3
    reporting_process.start()

    async def status() -> dict[str, Any] | None:
        response = await reporting_process.get("/api/v1/status")
        return response.json() if response is not None and response.status_code == 200 else None

    first_part = await publish(events[:third])
    await eventually(status, within_s=30, what="reporting up")
    publishing = asyncio.create_task(publish(events[third : 2 * third]))

    async def mid_stream() -> bool:
        current = await status()
        return current is not None and current["position"] >= first_part

    await eventually(mid_stream, within_s=30, what="first third projected")
    reporting_process.kill()  # while the second third is being published and projected
    await publishing
    # The last third arrives while reporting is dead: the kill was mid-stream whatever the timing.
    last = await publish(events[2 * third :])
    reporting_process.start()

    async def caught_up() -> httpx.Response | None:
        response = await reporting_process.get("/api/v1/stats/communities", min_sequence=last)
        return response if response is not None and response.status_code == 200 else None

    response = await eventually(caught_up, within_s=60, what="caught up after restart")
    rows = {row["key"]: row for row in response.json()["rows"]}
    facts: dict[str, IncidentFact] = {}
    for event in events:
        folded = project(facts.get(event.incident_id), event, sequences[event.event_id])
        if folded is not None:
            facts[event.incident_id] = folded
    expected = recount(facts.values(), Dimension.COMMUNITY, datetime.now(UTC))[community]
    got = {
        name: (value["numerator"], value["denominator"]) if isinstance(value, dict) else value
        for name, value in rows[community].items()
        if name in expected
    }
    assert got == expected
    assert got["reported"] == 150
