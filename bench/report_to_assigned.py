"""Report -> assigned through the real routing service, against a raw relay doing the same hop.

The raw relay is a nats-py pull consumer that, for each ``reported`` message, publishes an
``assigned`` message to JetStream with no logic: the floor for one consume-and-append hop.
Routing does the same hop plus loading the incident's history, the geo lookup, the decision and
an append with a concurrency check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from bench.harness import Figure
from civicgrid.city import GeoIndex, load_city
from civicgrid.city.paths import default_config_dir
from civicgrid.events import streams
from civicgrid.events.base import Actor, ActorKind, GeoPoint
from civicgrid.events.incident_events import Channel, ReportDetails, Reported
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings


@dataclass(frozen=True)
class Latency:
    name: str
    p50_ms: float
    p99_ms: float
    count: int


def _reports(count: int, seed: int = 7) -> list[Reported]:
    city = load_city(default_config_dir())
    index = GeoIndex(city)
    rng = random.Random(seed)
    codes = sorted(city.matters_by_code)
    reports = []
    for _ in range(count):
        lon, lat = index.random_point(rng)
        reports.append(
            Reported(
                incident_id=f"B{rng.getrandbits(64):016X}",
                source="bench",
                actor=Actor(kind=ActorKind.SYSTEM, id="bench"),
                correlation_id="bench",
                report=ReportDetails(
                    channel=Channel.CITIZEN_APP,
                    category=rng.choice(codes),
                    location=GeoPoint(lon=lon, lat=lat),
                ),
            )
        )
    return reports


class AssignedWatcher:
    """Timestamps every ``assigned`` as it lands in the stream (core subscription, no acks)."""

    def __init__(self, expected: set[str]) -> None:
        self.arrived: dict[str, float] = {}
        self.done = asyncio.Event()
        self.expected = expected

    async def on_message(self, msg: Msg) -> None:
        incident_id = msg.subject.split(".")[1]
        if incident_id in self.expected:
            self.arrived.setdefault(incident_id, time.perf_counter())
            if len(self.arrived) == len(self.expected):
                self.done.set()


async def _drive(
    client: NatsClient,
    reports: list[Reported],
    rate_per_s: float | None,
) -> tuple[dict[str, float], AssignedWatcher, float]:
    store = EventStore(client.jetstream())
    watcher = AssignedWatcher({report.incident_id for report in reports})
    subscription = await client.subscribe("incident.*.assigned", cb=watcher.on_message)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    for n, report in enumerate(reports):
        if rate_per_s is not None:
            # Open loop at a fixed rate: a slow consumer shows up as latency, not as a slower load.
            delay = started + n / rate_per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        sent[report.incident_id] = time.perf_counter()
        await store.append(report, msg_id=report.event_id, expected_version=0)
    await asyncio.wait_for(watcher.done.wait(), timeout=120)
    elapsed = time.perf_counter() - started
    await subscription.unsubscribe()
    return sent, watcher, elapsed


def _latency(name: str, sent: dict[str, float], watcher: AssignedWatcher) -> Latency:
    samples = sorted((watcher.arrived[i] - sent[i]) * 1000 for i in sent)
    p99 = samples[min(len(samples) - 1, int(len(samples) * 0.99))]
    return Latency(name, statistics.median(samples), p99, len(samples))


async def _with_raw_relay(
    client: NatsClient, work: Callable[[], Awaitable[None]], durable: str
) -> None:
    js = client.jetstream()
    subscription = await js.pull_subscribe(
        "incident.*.reported",
        durable=durable,
        stream=streams.INCIDENTS,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.EXPLICIT),
    )
    stopping = asyncio.Event()

    async def relay() -> None:
        while not stopping.is_set():
            try:
                batch = await subscription.fetch(1, timeout=1)
            except TimeoutError:
                continue
            pending = batch[0].metadata.num_pending
            if pending:
                with contextlib.suppress(TimeoutError):
                    batch += await subscription.fetch(min(pending, 63), timeout=0.05)
            for msg in batch:
                incident_id = msg.subject.split(".")[1]
                await js.publish(f"incident.{incident_id}.assigned", msg.data)
                await msg.ack()

    task = asyncio.create_task(relay())
    try:
        await work()
    finally:
        stopping.set()
        task.cancel()
        await js.delete_consumer(streams.INCIDENTS, durable)


async def _with_routing(server: EmbeddedNats, work: Callable[[], Awaitable[None]]) -> None:
    from civicgrid.routing.app import CONSUMER, build

    settings = ServiceSettings(
        service="routing",
        nats_url=server.client_url,
        http_host="127.0.0.1",
        http_port=free_port(),
        config_dir=None,
        log_level="WARNING",
        instance="bench-routing",
        stream_replicas=1,
    )
    # From new messages on: the stream already holds the other benchmarks' reports.
    service: Service = build(
        settings, consumer=dataclasses.replace(CONSUMER, deliver_policy=DeliverPolicy.NEW)
    )
    await service.start()
    try:
        await work()
    finally:
        await service.stop()


async def measure(
    server: EmbeddedNats, client: NatsClient, count: int, rate_per_s: float
) -> tuple[Latency, Latency, Figure, Figure]:
    """Latency at a fixed rate, then throughput with reports appended as fast as possible."""
    results: dict[str, tuple[dict[str, float], AssignedWatcher, float]] = {}

    def run(
        name: str, reports: list[Reported], rate: float | None
    ) -> Callable[[], Awaitable[None]]:
        async def work() -> None:
            results[name] = await _drive(client, reports, rate)

        return work

    paced_raw, paced_routed = _reports(count, seed=1), _reports(count, seed=2)
    burst_raw, burst_routed = _reports(count * 2, seed=3), _reports(count * 2, seed=4)
    await _with_raw_relay(client, run("raw-paced", paced_raw, rate_per_s), "bench-relay-1")
    await _with_raw_relay(client, run("raw-burst", burst_raw, None), "bench-relay-2")
    await _with_routing(server, run("routed-paced", paced_routed, rate_per_s))
    await _with_routing(server, run("routed-burst", burst_routed, None))

    def latency(key: str, name: str) -> Latency:
        sent, watcher, _ = results[key]
        return _latency(name, sent, watcher)

    def throughput(key: str, name: str, count: int) -> Figure:
        _, _, elapsed = results[key]
        return Figure(name, count, elapsed, "reports/s")

    return (
        latency("raw-paced", f"raw relay, report -> assigned at {rate_per_s:.0f}/s"),
        latency("routed-paced", f"routing, report -> assigned at {rate_per_s:.0f}/s"),
        throughput("raw-burst", "raw relay, reports appended and relayed", count * 2),
        throughput("routed-burst", "routing, reports appended and assigned", count * 2),
    )
