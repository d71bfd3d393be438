"""nats-server restarted (killed, down past the deadlines, started again) with timers pending:
every warning, breach and ladder level is recorded exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nats

from civicgrid.events.incident_events import SlaClockStarted
from civicgrid.events.store import EventStore
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.sla.app import compose
from civicgrid.sla.config import SlaConfig
from civicgrid.sla.policy_store import publish_policy
from tests.support.events.waiting import eventually
from tests.support.sla import Script
from tests.support.sla_nats import SlaWorld, labels

from .conftest import SECOND_SCALE, sla_settings


async def test_a_nats_restart_with_timers_pending_fires_each_exactly_once(
    own_nats: EmbeddedNats, sla_config: SlaConfig, tmp_path: Path
) -> None:
    client = await nats.connect(own_nats.client_url, max_reconnect_attempts=-1)
    js = client.jetstream()
    await ensure_streams(js)
    await publish_policy(js, SECOND_SCALE)
    app = compose(sla_settings(own_nats.client_url, "sla-nats-restart"), config=sla_config)
    await app.service.start()
    try:
        world = SlaWorld(EventStore(js), js)
        scripts = [world.incident() for _ in range(3)]
        started: list[SlaClockStarted] = []
        for script in scripts:
            await world.append(script.reported())
            await world.append(script.assigned())
        for script in scripts:
            found = await world.wait_for(script.incident_id, "sla_clock_started", 2)
            started += [e for e in found if isinstance(e, SlaClockStarted)]
            await eventually(lambda s=script: world.pending(s.incident_id), what="armed")
        own_nats.kill()
        last_due = max(e.due_at for e in started) + timedelta(seconds=2)
        await asyncio.sleep(max((last_due - datetime.now(UTC)).total_seconds(), 0))
        own_nats.start(log_file=tmp_path / "nats.log", die_with_parent=True)

        async def reconnected() -> bool:
            return client.is_connected and await app.service.problems() == []

        await eventually(reconnected, within_s=30, interval_s=0.2, what="reconnected and ready")
        for script in scripts:
            await world.wait_for(script.incident_id, "escalated", 4, within_s=40)

            async def settled(s: Script = script) -> bool:
                return not await world.pending(s.incident_id)

            await eventually(settled, what="no schedule left")
            counts = Counter(labels(await world.sla_events(script.incident_id)))
            for clock in ("accept", "resolve"):
                assert counts[f"sla_warning:{clock}"] == 1, counts
                assert counts[f"sla_breached:{clock}"] == 1, counts
                assert counts[f"escalated:{clock}"] == 2, counts
    finally:
        await app.service.stop()
        await client.drain()
