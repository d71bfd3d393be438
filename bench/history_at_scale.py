"""History loads in a long stream: the cost must follow the incident, not the stream.

The stream is filled with ``total`` messages. Measured incidents are of two kinds: "spread",
whose events were appended at evenly spaced points from the head of the stream to its tail (an
old incident: reported long ago, touched again by callbacks, reopens and 5-working-day clocks),
and "tail", whose events are all among the newest. Each is loaded with ``EventStore.load`` and
with the raw read a client would write first: one batched Direct Get on the incident's
wildcard subject (what the store did before), taken in the same run on the same server.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client as NatsClient
from nats.js.api import PubAck

from bench.harness import Figure, Stopwatch
from civicgrid.events import subjects, wire
from civicgrid.events.base import IncidentEvent
from civicgrid.events.store import EventStore
from civicgrid.events.streams import INCIDENTS
from tests.support.events.factories import accepted, reported

EVENTS_EACH = 8
_FILLER = b'{"event_type":"filler"}' + b" " * 560
_WINDOW = 4_000


async def measure(client: NatsClient, total: int, measured: int) -> list[Figure]:
    js = client.jetstream()
    spread = [_incident() for _ in range(measured)]
    tail = [_incident() for _ in range(measured)]
    filler_count = max(0, total - 2 * measured * EVENTS_EACH)
    step = max(1, filler_count // EVENTS_EACH)
    pending: list[asyncio.Future[PubAck]] = []
    filled = 0
    for stage in range(EVENTS_EACH):
        for events in spread:
            await _publish(client, events[stage])
        for _ in range(step):
            subject = f"incident.F{filled % 100_000:07d}.filler{filled // 100_000}"
            pending.append(await js.publish_async(subject, _FILLER))
            filled += 1
            if len(pending) >= _WINDOW:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        pending.clear()
    for events in tail:
        for event in events:
            await _publish(client, event)
    stream_length = (await js.stream_info(INCIDENTS)).state.messages
    store = EventStore(js)
    figures = []
    for label, incidents in (("spread over the stream", spread), ("at the tail", tail)):
        ids = [events[0].incident_id for events in incidents]
        figures.append(await _load_with_store(store, ids, f"store.load, {label}"))
        figures.append(await _load_raw(client, ids, f"raw wildcard Direct Get, {label}"))
    return [
        Figure(f"{f.name} ({stream_length:,} msgs)", f.count, f.seconds, f.unit) for f in figures
    ]


def _incident() -> list[IncidentEvent]:
    first = reported()
    return [first, *(accepted(first.incident_id) for _ in range(EVENTS_EACH - 1))]


async def _publish(client: NatsClient, event: IncidentEvent) -> None:
    headers = wire.cloudevents_headers(event)
    await client.jetstream().publish(wire.event_subject(event), wire.encode(event), headers=headers)


async def _load_with_store(store: EventStore, ids: list[str], name: str) -> Figure:
    with Stopwatch() as watch:
        for incident_id in ids:
            history = await store.load(incident_id)
            assert len(history) == EVENTS_EACH, (incident_id, len(history))
    return Figure(name, len(ids), watch.seconds, "loads/s")


async def _load_raw(client: NatsClient, ids: list[str], name: str) -> Figure:
    with Stopwatch() as watch:
        for incident_id in ids:
            found = await _wildcard_read(client, subjects.incident_events(incident_id))
            assert found == EVENTS_EACH, (incident_id, found)
    return Figure(name, len(ids), watch.seconds, "loads/s")


async def _wildcard_read(client: NatsClient, filter_subject: str) -> int:
    inbox = client.new_inbox()
    subscription = await client.subscribe(inbox)
    request = {"seq": 1, "next_by_subj": filter_subject, "batch": 256}
    await client.publish(f"$JS.API.DIRECT.GET.{INCIDENTS}", json.dumps(request).encode(), inbox)
    found = 0
    try:
        while True:
            msg = await subscription.next_msg(timeout=10)
            if (msg.headers or {}).get("Status"):
                return found
            found += 1
    finally:
        await subscription.unsubscribe()
