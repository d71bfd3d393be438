"""Exactly once across a kill -9 of the sla process and across two replicas on one durable."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from nats.js import JetStreamContext

from civicgrid.events import streams
from civicgrid.events.incident_events import SlaClockStarted
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.servicekit.service import Service
from tests.support import REPO_ROOT
from tests.support.events.waiting import eventually
from tests.support.sla import Script
from tests.support.sla_nats import SlaWorld, labels

from .conftest import StartSla

INCIDENTS = 5


def _once_each(events_by_incident: dict[str, list[str]]) -> None:
    for incident_id, found in events_by_incident.items():
        counts = Counter(found)
        for clock in ("accept", "resolve"):
            for label in ("sla_warning", "sla_breached"):
                assert counts[f"{label}:{clock}"] == 1, (incident_id, found)
            assert counts[f"escalated:{clock}"] == 2, (incident_id, found)


class SlaProcess:
    def __init__(self, url: str, bucket: str, suffix: str, log: Path) -> None:
        self.args = [url, str(free_port()), bucket, suffix]
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.sla_process", *self.args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                cwd=REPO_ROOT,
            )

    async def ready(self) -> None:
        async def probe() -> bool:
            try:
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{self.args[1]}/readyz")
            except httpx.HTTPError:
                return False
            return response.status_code == 200

        await eventually(probe, within_s=30, interval_s=0.1, what="sla process ready")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def sla_process(
    nats_server: EmbeddedNats, policy_bucket: str, tmp_path: Path
) -> Iterator[SlaProcess]:
    process = SlaProcess(
        nats_server.client_url, policy_bucket, uuid.uuid4().hex[:10], tmp_path / "sla.log"
    )
    yield process
    process.stop()


async def test_kill_9_with_timers_pending_then_restart_after_due_fires_each_exactly_once(
    sla_process: SlaProcess, world: SlaWorld, js: JetStreamContext
) -> None:
    sla_process.start()
    await sla_process.ready()
    scripts = [world.incident() for _ in range(INCIDENTS)]
    for script in scripts:
        await world.append(script.reported())
        await world.append(script.assigned())
    started: list[SlaClockStarted] = []
    for script in scripts:
        found = await world.wait_for(script.incident_id, "sla_clock_started", 2)
        started += [e for e in found if isinstance(e, SlaClockStarted)]
    for script in scripts:
        await eventually(lambda s=script: world.pending(s.incident_id), what="timers armed")
    sla_process.kill9()
    # Wait until past every deadline and the ladder's last level (1 s after), with margin.
    last_due = max(e.due_at for e in started) + timedelta(seconds=2)
    await asyncio.sleep(max((last_due - datetime.now(UTC)).total_seconds(), 0))
    for script in scripts:  # nothing can have been recorded: the service was down
        assert "sla_breached:resolve" not in labels(await world.sla_events(script.incident_id))
    sla_process.start()
    await sla_process.ready()
    found: dict[str, list[str]] = {}
    for script in scripts:
        await world.wait_for(script.incident_id, "escalated", 4, within_s=30)

        async def settled(s: Script = script) -> bool:
            return not await world.pending(s.incident_id)

        await eventually(settled, what="no schedule left")
        found[script.incident_id] = labels(await world.sla_events(script.incident_id))
    _once_each(found)
    suffix = sla_process.args[3]
    sla_process.stop()
    await js.delete_consumer(streams.INCIDENTS, f"sla-clocks-{suffix}")
    await js.delete_consumer(streams.SLA_TIMERS, f"sla-timers-{suffix}")


async def test_two_replicas_on_one_durable_escalate_each_level_once(
    start_sla: StartSla, world: SlaWorld
) -> None:
    replicas = (await start_sla(), await start_sla())
    scripts = [world.incident() for _ in range(INCIDENTS * 4)]

    async def open_incident(script: Script) -> None:
        await world.append(script.reported())
        await world.append(script.assigned())

    await asyncio.gather(*(open_incident(s) for s in scripts))
    found: dict[str, list[str]] = {}
    for script in scripts:
        await world.wait_for(script.incident_id, "escalated", 4, within_s=30)

        async def settled(s: Script = script) -> bool:
            return not await world.pending(s.incident_id)

        await eventually(settled, what="no schedule left")
        found[script.incident_id] = labels(await world.sla_events(script.incident_id))
    _once_each(found)
    fired = [_fired(replica.service) for replica in replicas]
    assert sum(fired) >= len(scripts) * 8, fired
    assert min(fired) > 0, f"both replicas should have handled firings: {fired}"


def _fired(service: Service) -> float:
    total = 0.0
    for metric in service.registry.collect():
        if metric.name == "civicgrid_sla_timer_firings":
            total += sum(
                s.value
                for s in metric.samples
                if s.name.endswith("_total") and s.labels["verdict"] == "fired"
            )
    return total
