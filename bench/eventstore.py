"""The event store against the raw baseline: appends with concurrency checks, history loads."""

from __future__ import annotations

from nats.aio.client import Client as NatsClient

from bench.harness import Figure, Stopwatch
from bench.table import Row
from civicgrid.events.store import EventStore
from tests.support.events.factories import accepted, reported


async def append_new_incidents(client: NatsClient, count: int) -> Figure:
    """Create incidents one at a time with expected_version=0: intake's report path."""
    store = EventStore(client.jetstream())
    events = [reported() for _ in range(count)]
    with Stopwatch() as watch:
        for event in events:
            await store.append(event, msg_id=event.event_id, expected_version=0)
    return Figure("store.append (new incident, concurrency check)", count, watch.seconds)


async def load_histories(client: NatsClient, count: int, events_each: int = 8) -> Figure:
    """Load incidents of ``events_each`` events: what every command does before deciding."""
    store = EventStore(client.jetstream())
    incident_ids = await _incidents(store, count, events_each)
    with Stopwatch() as watch:
        for incident_id in incident_ids:
            history = await store.load(incident_id)
            assert len(history) == events_each
    return Figure(f"store.load ({events_each}-event history)", count, watch.seconds, "loads/s")


async def ask_the_leader(client: NatsClient, count: int, events_each: int = 8) -> Figure:
    """The incident's last sequence from the stream's leader: what a refusal (or a no-op)
    adds before it is answered, so that it is never decided on a follower's stale view."""
    store = EventStore(client.jetstream())
    incident_ids = await _incidents(store, count, events_each)
    with Stopwatch() as watch:
        for incident_id in incident_ids:
            assert await store.last_sequence(incident_id) > 0
    return Figure("store.last_sequence (a refusal's check)", count, watch.seconds, "checks/s")


async def _incidents(store: EventStore, count: int, events_each: int) -> list[str]:
    incident_ids = []
    for _ in range(count):
        first = reported()
        version = (await store.append(first, msg_id=first.event_id, expected_version=0)).sequence
        more = [accepted(first.incident_id) for _ in range(events_each - 1)]
        await store.append_decision(
            more, cause=first.event_id, fingerprint="", expected_version=version
        )
        incident_ids.append(first.incident_id)
    return incident_ids


async def optional_figures() -> list[Row]:
    """Figures from parts that may not be installed in every checkout (the city lookup).
    No NATS is involved, so they stand without a baseline."""
    try:
        from civicgrid.city.bench import bench_lookup
    except ImportError:
        return []
    rate = bench_lookup(20_000)
    return [Row("city (no NATS)", "point -> micro-grid -> grid -> community lookup", rate,
                "lookups/s")]  # fmt: skip
