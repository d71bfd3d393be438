"""Timer firing lateness: N pending deadlines spread over a window, through the sla service to
the stored ``sla_breached``, against a bare subscriber of the same kind of schedules.

- Baseline: N schedules in SLA_TIMERS consumed by a nats-py pull consumer that does nothing but
  note when each firing arrived (lateness = arrival - the schedule's time).
- Service: N incidents whose histories already hold a running resolve clock (written by the
  bench as if sla had started them), a breach schedule each, and the sla service as its own
  process; lateness = the ``sla_breached`` event's stream timestamp - its due time. The bench
  policy has no warnings and no ladder: one firing per deadline.
- The sla process's peak memory (VmHWM) at that load.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, KeyValueConfig, StorageType

from bench.city import bench_city
from civicgrid.events import streams, timers
from civicgrid.events.base import Actor, ActorKind, GeoPoint, UnitKind, UnitRef
from civicgrid.events.incident_events import (
    Channel,
    ReportDetails,
    Reported,
    SlaClockStarted,
)
from civicgrid.events.models import load_event_json
from civicgrid.events.store import EventStore
from civicgrid.events.timers import TimerFiring
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.policy_store import publish_policy
from tests.support import REPO_ROOT

BENCH_POLICY = SlaPolicyVersion.model_validate(
    {
        "policy_version": 1,
        "warning_ratios": [],
        "classes": {"standard": {"accept": "30m", "resolve": "24h"}},
        "ladder": [],
    }
)
WRITERS = 32


@dataclass(frozen=True)
class Lateness:
    name: str
    p50_s: float
    p99_s: float
    count: int


def _lateness(name: str, samples: list[float]) -> Lateness:
    if not samples:
        raise RuntimeError(f"{name}: nothing fired")
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Lateness(name, statistics.median(ordered), p99, len(ordered))


def _due_times(count: int, start: datetime, window_s: float) -> list[datetime]:
    return [start + timedelta(seconds=window_s * i / count) for i in range(count)]


async def _in_parallel(items: list[object], work: object) -> None:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())  # type: ignore[operator]

    await asyncio.gather(*(worker() for _ in range(WRITERS)))


async def baseline(client: NatsClient, count: int, window_s: float, lead_s: float) -> Lateness:
    js = client.jetstream()
    run = uuid.uuid4().hex[:8]
    durable = f"bench-timers-{run}"
    subscription = await js.pull_subscribe(
        "sla.fired.*.resolve.breach",
        durable=durable,
        stream=streams.SLA_TIMERS,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.NONE),
    )
    start = datetime.now(UTC) + timedelta(seconds=lead_s)
    dues = _due_times(count, start, window_s)

    async def arm(i: object) -> None:
        assert isinstance(i, int)
        await timers.arm(
            js,
            TimerFiring(
                incident_id=f"BASE{run}-{i}",
                clock="resolve",
                stage="breach",
                clock_version=1,
                fire_at=dues[i],
                correlation_id="bench",
            ),
        )

    await _in_parallel(list(range(count)), arm)
    samples: list[float] = []
    deadline = time.monotonic() + lead_s + window_s + 120
    while len(samples) < count and time.monotonic() < deadline:
        with contextlib.suppress(TimeoutError):
            for msg in await subscription.fetch(256, timeout=1):
                arrived = datetime.now(UTC)
                fired = timers.decode_firing(msg)
                if fired.incident_id.startswith(f"BASE{run}-"):
                    samples.append((arrived - fired.fire_at).total_seconds())
    await js.delete_consumer(streams.SLA_TIMERS, durable)
    return _lateness("bare subscriber: firing received", samples)


async def _write_clocks(client: NatsClient, count: int, dues: list[datetime], run: str) -> None:
    js = client.jetstream()
    store = EventStore(js)
    actor = Actor(kind=ActorKind.SERVICE, id="bench")
    unit = UnitRef(kind=UnitKind.GRID, id="bench-grid")

    async def one(i: object) -> None:
        assert isinstance(i, int)
        incident_id = f"S{run}{i:07d}"
        env = {"incident_id": incident_id, "source": "bench", "actor": actor}
        env["correlation_id"] = "bench"
        assigned_at = dues[i] - timedelta(hours=24)
        reported = Reported(
            **env,
            report=ReportDetails(
                channel=Channel.CITIZEN_APP,
                category="bench",
                location=GeoPoint(lon=114.25, lat=22.72),
            ),
        )
        # No ``assigned``: the sla-clocks consumer would race the bench to start the clock.
        started = SlaClockStarted(
            **{**env, "source": "sla", "actor": Actor(kind=ActorKind.SERVICE, id="sla")},
            clock="resolve",
            sla_class="standard",
            started_at=assigned_at,
            due_at=dues[i],
            warn_at=dues[i],
            clock_version=1,
            policy_version=1,
            unit=unit,
        )
        # accept is left out: the bench measures one deadline per incident.
        version = 0
        for event in (reported, started):
            result = await store.append(event, msg_id=event.event_id, expected_version=version)
            version = result.sequence
        await timers.arm(
            js,
            TimerFiring(
                incident_id=incident_id,
                clock="resolve",
                stage="breach",
                clock_version=1,
                fire_at=dues[i],
                # As sla arms it: with the correlation id of the event that started the clock.
                correlation_id="bench",
            ),
        )

    await _in_parallel(list(range(count)), one)


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def through_service(
    server: EmbeddedNats,
    client: NatsClient,
    count: int,
    window_s: float,
    lead_s: float,
    city: Path,
) -> tuple[Lateness, float]:
    js = client.jetstream()
    run = uuid.uuid4().hex[:6].upper()
    bucket = f"SLA_POLICY_BENCH{run}"
    await js.create_key_value(KeyValueConfig(bucket=bucket, history=4, storage=StorageType.MEMORY))
    await publish_policy(js, BENCH_POLICY, bucket=bucket)
    breached = await js.pull_subscribe(
        "incident.*.sla_breached",
        durable=f"bench-breached-{run}",
        stream=streams.INCIDENTS,
        config=ConsumerConfig(deliver_policy=DeliverPolicy.NEW, ack_policy=AckPolicy.NONE),
    )
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.sla_process",
        server.client_url,
        str(port),
        bucket,
        f"bench{run.lower()}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "CIVICGRID_LOG_LEVEL": "WARNING", "CIVICGRID_CONFIG": str(city)},
        cwd=REPO_ROOT,
    )
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
        start = datetime.now(UTC) + timedelta(seconds=lead_s)
        dues = _due_times(count, start, window_s)
        await _write_clocks(client, count, dues, run)
        samples: list[float] = []
        deadline = time.monotonic() + lead_s + window_s + 300
        while len(samples) < count and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError):
                for msg in await breached.fetch(256, timeout=1):
                    event = load_event_json(msg.data)
                    due_at = getattr(event, "due_at")  # noqa: B009
                    stored = msg.metadata.timestamp
                    samples.append((stored - due_at).total_seconds())
        rss = _peak_rss_mb(process.pid)
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)
        await js.delete_consumer(streams.INCIDENTS, f"bench-breached-{run}")
        await js.delete_key_value(bucket)
    return _lateness("sla service: sla_breached stored", samples), rss


def window_for(count: int) -> float:
    """Deadlines spread over a few minutes at the issue's 100,000 (about 500 due per second)."""
    return max(30.0, count / 500)


async def measure(
    server: EmbeddedNats, client: NatsClient, count: int, window_s: float
) -> tuple[Lateness, Lateness, float]:
    # Arming (and, for the service, writing three events per incident) happens before the
    # first deadline: the lead gives it time on this machine.
    lead_s = 20.0 + count / 500
    base = await baseline(client, count, window_s, lead_s)
    with tempfile.TemporaryDirectory(prefix="civicgrid-bench-city-") as directory:
        city = bench_city(Path(directory))
        served, rss = await through_service(server, client, count, window_s, lead_s, city)
    return base, served, rss


async def _row() -> None:
    """This row alone, at ``CIVICGRID_BENCH_SCALE`` (20: the issue's 100,000 deadlines)."""
    from bench.harness import bench_server

    scale = float(os.environ.get("CIVICGRID_BENCH_SCALE", "1.0"))
    count = max(100, int(5_000 * scale))
    window = window_for(count)
    async with bench_server() as (server, client):
        base, served, rss = await measure(server, client, count, window)
    print(f"timer firing lateness, {count:,} pending deadlines over {window:.0f} s")
    for f in (base, served):
        print(f"  {f.name}: p50 {f.p50_s:.3f} s, p99 {f.p99_s:.3f} s ({f.count:,} fired)")
    p50, p99 = served.p50_s / base.p50_s, served.p99_s / base.p99_s
    print(f"  ratio sla / bare subscriber: p50 {p50:.2f}x, p99 {p99:.2f}x")
    print(f"  sla process peak memory (VmHWM): {rss:.0f} MB")


if __name__ == "__main__":
    # python -m bench.sla_timers (the whole table: python -m bench)
    asyncio.run(_row())
