"""Dead letters end to end against a real nats-server: retention, and `civicgrid dlq`."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime

from nats.aio.client import Client as NatsClient
from nats.js.api import DeliverPolicy, DiscardPolicy

from civicgrid.cli.dlq import letters
from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import ConsumerSpec, Delivery, PermanentFailure
from civicgrid.events.dead_letters import DeadLetter
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.events.factories import reported
from tests.support.events.waiting import eventually


async def test_the_dlq_keeps_letters_thirty_days_at_most_oldest_dropped_first(
    nc: NatsClient,
) -> None:
    config = (await nc.jetstream().stream_info(streams.DLQ)).config
    assert config.max_age == 30 * 24 * 3600
    assert config.max_bytes is not None and 0 < config.max_bytes <= 1024**3
    assert config.discard == DiscardPolicy.OLD


async def civicgrid(*argv: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "civicgrid.cli",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def service_settings(nats_server: EmbeddedNats, service: str) -> ServiceSettings:
    return ServiceSettings(
        service=service,
        nats_url=nats_server.client_url,
        http_host="127.0.0.1",
        http_port=0,
        config_dir=None,
        log_level="WARNING",
        instance=f"{service}-1",
        stream_replicas=1,
    )


async def _letters_of(nc: NatsClient, service: str) -> list[tuple[int, DeadLetter]]:
    return [each async for each in letters(nc.jetstream(), service)]


async def test_a_replayed_letter_is_handled_again_by_its_consumer_without_a_second_event(
    nats_server: EmbeddedNats, nc: NatsClient, store: EventStore
) -> None:
    event = reported()
    broken = True
    handled: list[tuple[str, str, int, int]] = []

    async def handle(event: IncidentEvent, delivery: Delivery) -> None:
        if broken:
            raise PermanentFailure("category not configured")
        handled.append(
            (event.event_id, delivery.subject, delivery.stream_sequence, delivery.deliveries)
        )

    service = Service(service_settings(nats_server, "replayed"), title="replayed")
    spec = ConsumerSpec(
        service="replayed",
        durable="replayed-c",
        filter_subjects=(f"incident.{event.incident_id}.*",),
        deliver_policy=DeliverPolicy.NEW,
    )
    service.consume(spec, handle)
    await service.start()
    url = nats_server.client_url
    try:
        stored = await store.append(event, msg_id=event.event_id, expected_version=0)
        ((sequence, letter),) = await eventually(
            lambda: _letters_of(nc, "replayed"), what="the dead letter"
        )
        assert letter.reason == "rejected"

        listed = await civicgrid("dlq", "list", "--service", "replayed", "--nats", url)
        assert f"{sequence}  " in listed and "replayed/replayed-c  rejected" in listed
        shown = json.loads(await civicgrid("dlq", "show", str(sequence), "--nats", url))
        assert shown["original"]["event_id"] == event.event_id
        assert shown["error"] == "PermanentFailure: category not configured"

        broken = False  # the fix is deployed
        replayed = await civicgrid("dlq", "replay", str(sequence), "--nats", url)
        assert "1 replay(s) requested" in replayed
        await eventually(lambda: _async(bool(handled)), what="the replay handled")
        subject = f"incident.{event.incident_id}.reported"
        assert handled == [(event.event_id, subject, stored.sequence, 1)]
        # The event was handled again, not appended again.
        assert len((await store.load(event.incident_id)).events) == 1
    finally:
        await service.stop()


async def test_a_replay_that_fails_again_is_dead_lettered_again_and_can_be_replayed(
    nats_server: EmbeddedNats, nc: NatsClient, store: EventStore
) -> None:
    event = reported()
    attempts = 0

    async def handle(event: IncidentEvent, delivery: Delivery) -> None:
        nonlocal attempts
        attempts += 1
        if attempts <= 2:
            raise PermanentFailure(f"attempt {attempts}")

    service = Service(service_settings(nats_server, "rereplayed"), title="rereplayed")
    spec = ConsumerSpec(
        service="rereplayed",
        durable="rereplayed-c",
        filter_subjects=(f"incident.{event.incident_id}.*",),
        deliver_policy=DeliverPolicy.NEW,
    )
    service.consume(spec, handle)
    await service.start()
    js = nc.jetstream()
    try:
        await store.append(event, msg_id=event.event_id, expected_version=0)
        await eventually(lambda: _letters_of(nc, "rereplayed"), what="the first letter")
        await civicgrid(
            "dlq", "replay", "--all", "--service", "rereplayed", "--nats", nats_server.client_url
        )
        found = await eventually(
            lambda: _at_least(_letters_of(nc, "rereplayed"), 2), what="a second letter"
        )
        second, letter = found[1]
        assert (letter.consumer, letter.error) == (
            "rereplayed-c-redrive",
            "PermanentFailure: attempt 2",
        )
        await civicgrid("dlq", "replay", str(second), "--nats", nats_server.client_url)
        await eventually(lambda: _async(attempts == 3), what="the third attempt")
        info = await js.consumer_info(streams.DLQ, "rereplayed-c-redrive")
        assert info.num_ack_pending == 0
    finally:
        await service.stop()


async def _at_least(found: object, count: int) -> list[tuple[int, DeadLetter]] | None:
    letters_found: list[tuple[int, DeadLetter]] = await found  # type: ignore[misc]
    return letters_found if len(letters_found) >= count else None


async def _async(value: bool) -> bool:
    return value


async def test_a_letter_of_a_consumer_that_no_longer_runs_is_not_replayed_into_the_void(
    nats_server: EmbeddedNats, nc: NatsClient
) -> None:
    js = nc.jetstream()
    letter = DeadLetter(
        service="retired",
        consumer="retired-observer",
        reason="rejected",
        error="PermanentFailure: no longer wanted",
        original_subject="incident.X.reported",
        original_stream=streams.INCIDENTS,
        original_sequence=1,
        deliveries=1,
        original_headers={},
        original_data_b64="e30=",
        dead_at=datetime.now(UTC),
    )
    ack = await js.publish("dlq.retired", letter.model_dump_json().encode(), stream=streams.DLQ)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "civicgrid.cli",
        "dlq",
        "replay",
        str(ack.seq),
        "--nats",
        nats_server.client_url,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode != 0
    assert "has no consumer retired-observer-redrive" in err.decode()
    listed = await civicgrid(
        "dlq", "replay", "--all", "--service", "retired", "--nats", nats_server.client_url
    )
    assert "0 replay(s) requested" in listed
