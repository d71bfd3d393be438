"""Runs every benchmark and prints each figure with its ratio to the raw-NATS baseline."""

from __future__ import annotations

import asyncio
import os
import platform

from bench import baseline, eventstore
from bench.harness import Figure, bench_server

SCALE = float(os.environ.get("CIVICGRID_BENCH_SCALE", "1.0"))


def _n(count: int) -> int:
    return max(100, int(count * SCALE))


def _row(figure: Figure, against: Figure | None) -> str:
    ratio = f"{figure.rate / against.rate:6.2f}x" if against else "   base"
    return f"  {figure.name:<58} {figure.rate:>12,.0f} {figure.unit:<10} {ratio}"


async def main() -> None:
    print(f"civicgrid benchmarks on {platform.node()} ({os.cpu_count()} cores), scale {SCALE}")
    async with bench_server() as (_, client):
        raw_publish = await baseline.publish_windowed(client, _n(50_000))
        raw_pull = await baseline.pull_fetch_ack(client, raw_publish.count)
        raw_one = await baseline.publish_sequential(client, _n(5_000))
        store_append = await eventstore.append_new_incidents(client, _n(5_000))
        store_load = await eventstore.load_histories(client, _n(2_000))
    print("raw NATS baseline (same run, same server):")
    print(_row(raw_publish, None))
    print(_row(raw_one, None))
    print(_row(raw_pull, None))
    print("event store:")
    print(_row(store_append, raw_one))
    print(_row(store_load, raw_one))
    for extra in await eventstore.optional_figures():
        print(extra)


if __name__ == "__main__":
    asyncio.run(main())
