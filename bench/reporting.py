"""Reporting: rebuild rate of the read model (SQLite) against a raw ordered-consumer read of
the same stream, and the per-community stats query over many incidents."""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig, DeliverPolicy
from prometheus_client import CollectorRegistry
from sqlalchemy import insert

from bench.harness import Figure, Stopwatch
from civicgrid.events import streams, wire
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.incident_events import HandlingLevel, ReturnReason
from civicgrid.events.projector import Projector, ProjectorMetrics
from civicgrid.reporting.database import open_database
from civicgrid.reporting.fact_store import FactStore
from civicgrid.reporting.facts import IncidentFact
from civicgrid.reporting.figures import Dimension, Period, figures, rebuild_cells
from civicgrid.reporting.projection import FactProjection
from civicgrid.reporting.schema import incident_facts
from tests.support.reporting.lives import Life

START = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
WINDOW = 256


def _life(n: int, rng: random.Random) -> Life:
    community = f"c{1 + n % 26:02d}"
    life = Life(f"b{n:08d}", START + timedelta(minutes=n), community=community,
                grid=f"{community}-g{1 + n % 9:03d}")  # fmt: skip
    life.report().assign(1, HandlingLevel.GRID).clock(1, "accept", 31).accept(rng.randint(2, 60))
    life.met(61, "accept").clock(61, "resolve", 1500)
    if rng.random() < 0.1:
        life.give_back(70, ReturnReason.NOT_OUR_DUTY).assign(71, HandlingLevel.DEPARTMENT)
    return life.resolve(rng.randint(100, 2000)).met(2001, "resolve").close(2100)


async def publish_city(client: NatsClient, incidents: int) -> int:
    """Publishes the incidents' events (about 10 each); returns the stream's last sequence."""
    js = client.jetstream()
    rng = random.Random(9)
    pending: set[asyncio.Future[object]] = set()
    for n in range(incidents):
        for event in _life(n, rng).events:
            future = await js.publish_async(wire.event_subject(event), wire.encode(event))
            pending.add(future)  # type: ignore[arg-type]
            if len(pending) >= WINDOW:
                _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    return int((await js.stream_info(streams.INCIDENTS)).state.last_seq)


async def raw_ordered_read(client: NatsClient, last: int) -> Figure:
    js = client.jetstream()
    subscription = await js.subscribe(
        "incident.>",
        stream=streams.INCIDENTS,
        ordered_consumer=True,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL),
    )
    received = 0
    with Stopwatch() as watch:
        while received < last:
            await subscription.next_msg(timeout=10)
            received += 1
    await subscription.unsubscribe()
    return Figure("raw ordered-consumer read of INCIDENTS", received, watch.seconds, "events/s")


async def rebuild_sqlite(client: NatsClient, last: int) -> Figure:
    js = client.jetstream()
    with tempfile.TemporaryDirectory(prefix="civicgrid-bench-reporting-") as directory:
        engine = open_database(f"sqlite:///{Path(directory) / 'reporting.sqlite'}")
        projector = Projector(
            FactProjection(FactStore(engine)),
            lambda: js,
            DeadLetterPublisher(lambda: js, "bench"),
            ProjectorMetrics.create(CollectorRegistry()),
        )
        with Stopwatch() as watch:
            await projector.start()
            reached = await projector.wait_for(last, timeout_s=600)
        await projector.stop()
        engine.dispose()
    if not reached:
        raise RuntimeError(f"rebuild did not reach {last} in time")
    return Figure("reporting rebuild into SQLite (projector)", last, watch.seconds, "events/s")


def stats_query(incidents: int) -> list[Figure]:
    """Over ``incidents`` fact rows spread over a year: the figures per community (from the
    cells, as the API, the dashboard and the gauges read them), per grid (a pass over the
    facts), and the one-off recount of every cell (what migration 0004 does to an old model)."""
    rng = random.Random(3)
    with tempfile.TemporaryDirectory(prefix="civicgrid-bench-stats-") as directory:
        engine = open_database(f"sqlite:///{Path(directory) / 'reporting.sqlite'}")
        template = IncidentFact(
            incident_id="", last_sequence=1, assignments=1, channel="citizen_app"
        )
        rows = []
        with engine.begin() as connection:
            for n in range(incidents):
                at = START + timedelta(minutes=rng.randint(0, 365 * 24 * 60))
                community = f"c{1 + n % 26:02d}"
                fact = replace(
                    template,
                    incident_id=f"s{n:09d}",
                    reported_at=at,
                    reported_day=(at + timedelta(hours=8)).date().isoformat(),
                    community_id=community,
                    grid_id=f"{community}-g{1 + n % 9:03d}",
                    lead_unit_id=f"{community}-g{1 + n % 9:03d}",
                    matter="roads.pothole",
                    matter_group="roads",
                    level="grid",
                    resolved_at=at + timedelta(hours=5) if n % 10 else None,
                    resolved_level="grid" if n % 10 else None,
                    closed_at=at + timedelta(hours=6) if n % 10 else None,
                    resolve_on_time=bool(n % 7) if n % 10 else None,
                )
                rows.append(fact.as_row())
                if len(rows) == 5000:
                    connection.execute(insert(incident_facts), rows)
                    rows = []
            if rows:
                connection.execute(insert(incident_facts), rows)
        with Stopwatch() as recount, engine.begin() as connection:
            rebuild_cells(connection)
        timed: list[Figure] = []
        for dimension, name in (
            (Dimension.COMMUNITY, "per-community stats query"),
            (Dimension.GRID, "per-grid stats query"),
        ):
            started = time.perf_counter()
            with engine.connect() as connection:
                result = figures(connection, dimension, Period(), datetime.now(UTC))
            seconds = time.perf_counter() - started
            assert sum(row.counts["reported"] for row in result) == incidents
            timed.append(Figure(f"{name} over {incidents:,} incidents", 1, seconds, "query/s"))
        engine.dispose()
    timed.append(
        Figure(f"recount of every cell from {incidents:,} incidents", 1, recount.seconds, "run/s")
    )
    return timed
