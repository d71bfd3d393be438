"""A throwaway nats-server for one benchmark run, and a timer."""

from __future__ import annotations

import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import nats
from nats.aio.client import Client as NatsClient

from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port


@dataclass(frozen=True)
class Figure:
    name: str
    count: int
    seconds: float
    unit: str = "msg/s"

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else float("inf")


@asynccontextmanager
async def bench_server() -> AsyncIterator[tuple[EmbeddedNats, NatsClient]]:
    with tempfile.TemporaryDirectory(prefix="civicgrid-bench-") as directory:
        server = EmbeddedNats(data_dir=Path(directory), port=free_port())
        server.start()
        client = await nats.connect(server.client_url, name="bench")
        try:
            await ensure_streams(client.jetstream())
            yield server, client
        finally:
            await client.close()
            server.stop()


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started
