"""The raw-NATS baseline: what nats-py and this machine's nats-server do with no logic at all.

JetStream publish with a window of outstanding acks, and pull-fetch-ack, for event-sized
messages on a stream configured like INCIDENTS (file storage, one replica).
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bench.harness import Figure, Stopwatch

STREAM = "BASELINE"
PAYLOAD = os.urandom(300).hex().encode()[:600]  # about the size of a serialised event
WINDOW = 256


async def _fresh_stream(client: NatsClient) -> None:
    js = client.jetstream()
    with contextlib.suppress(NotFoundError):
        await js.delete_stream(STREAM)
    await js.add_stream(
        StreamConfig(name=STREAM, subjects=["baseline.>"], storage=StorageType.FILE)
    )


async def publish_windowed(client: NatsClient, count: int) -> Figure:
    await _fresh_stream(client)
    js = client.jetstream()
    pending: set[asyncio.Future[object]] = set()
    with Stopwatch() as watch:
        for n in range(count):
            future = await js.publish_async(f"baseline.{n % 1000}.reported", PAYLOAD)
            pending.add(future)  # type: ignore[arg-type]
            if len(pending) >= WINDOW:
                _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        await asyncio.gather(*pending)
    return Figure("raw JetStream publish (window 256)", count, watch.seconds)


async def publish_sequential(client: NatsClient, count: int) -> Figure:
    """One publish, wait for its ack, the next: what a request/reply command path costs."""
    await _fresh_stream(client)
    js = client.jetstream()
    with Stopwatch() as watch:
        for n in range(count):
            await js.publish(f"baseline.{n}.reported", PAYLOAD)
    return Figure("raw JetStream publish (one at a time)", count, watch.seconds)


async def pull_fetch_ack(client: NatsClient, count: int, batch: int = 64) -> Figure:
    js = client.jetstream()
    subscription = await js.pull_subscribe(
        "baseline.>",
        durable="baseline-reader",
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT),
    )
    received = 0
    with Stopwatch() as watch:
        while received < count:
            for msg in await subscription.fetch(batch, timeout=5):
                await msg.ack()
                received += 1
    return Figure("raw pull-fetch-ack (batch 64)", received, watch.seconds)
