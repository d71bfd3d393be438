"""Runs every benchmark and prints each figure with its ratio to the raw-NATS baseline."""

from __future__ import annotations

import asyncio
import os
import platform

from bench import (
    baseline,
    eventstore,
    history_at_scale,
    report_to_assigned,
    reporting,
    sla_timers,
)
from bench.harness import Figure, bench_server

SCALE = float(os.environ.get("CIVICGRID_BENCH_SCALE", "1.0"))


def _n(count: int) -> int:
    return max(100, int(count * SCALE))


def _row(figure: Figure, against: Figure | None) -> str:
    ratio = f"{figure.rate / against.rate:6.2f}x" if against else "   base"
    return f"  {figure.name:<58} {figure.rate:>12,.0f} {figure.unit:<10} {ratio}"


async def main() -> None:
    print(f"civicgrid benchmarks on {platform.node()} ({os.cpu_count()} cores), scale {SCALE}")
    async with bench_server() as (server, client):
        raw_publish = await baseline.publish_windowed(client, _n(50_000))
        raw_pull = await baseline.pull_fetch_ack(client, raw_publish.count)
        raw_one = await baseline.publish_sequential(client, _n(5_000))
        store_append = await eventstore.append_new_incidents(client, _n(5_000))
        store_load = await eventstore.load_histories(client, _n(2_000))
        raw_latency, routed_latency, raw_flow, routed_flow = await report_to_assigned.measure(
            server, client, _n(1_000), rate_per_s=50
        )
        # The figure is at 100,000 pending deadlines: CIVICGRID_BENCH_SCALE=20.
        deadlines = _n(5_000)
        timer_base, timer_sla, sla_rss_mb = await sla_timers.measure(
            server, client, deadlines, sla_timers.window_for(deadlines)
        )
        stream_end = await reporting.publish_city(client, _n(2_000))
        raw_ordered = await reporting.raw_ordered_read(client, stream_end)
        rebuild = await reporting.rebuild_sqlite(client, stream_end)
        # Last: it fills the stream with a million messages.
        long_stream = await history_at_scale.measure(client, _n(1_000_000), _n(200))
    stats = reporting.stats_query(_n(50_000))
    print("raw NATS baseline (same run, same server):")
    print(_row(raw_publish, None))
    print(_row(raw_one, None))
    print(_row(raw_pull, None))
    print("event store:")
    print(_row(store_append, raw_one))
    print(_row(store_load, raw_one))
    print("report -> assigned (routing service, shipped city):")
    for latency in (raw_latency, routed_latency):
        p50, p99 = latency.p50_ms / raw_latency.p50_ms, latency.p99_ms / raw_latency.p99_ms
        ratio = f"p50 {p50:5.2f}x p99 {p99:5.2f}x" if latency is not raw_latency else "base"
        times = f"p50 {latency.p50_ms:7.2f} ms  p99 {latency.p99_ms:7.2f} ms"
        print(f"  {latency.name:<58} {times}   {ratio}")
    print(_row(raw_flow, None))
    print(_row(routed_flow, raw_flow))
    print("reporting (read model on SQLite; the whole INCIDENTS stream):")
    print(_row(raw_ordered, None))
    print(_row(rebuild, raw_ordered))
    print(f"  {stats.name:<58} {stats.seconds * 1000:>12,.1f} ms")
    print("history loads in a long stream (raw: one wildcard Direct Get, the old read):")
    for ours, raw in zip(long_stream[::2], long_stream[1::2], strict=True):
        print(_row(raw, None))
        print(_row(ours, raw))
    print(
        f"timer firing lateness, {deadlines:,} pending deadlines over"
        f" {sla_timers.window_for(deadlines):.0f} s (sla service):"
    )
    for lateness in (timer_base, timer_sla):
        if lateness is timer_base:
            ratio = "base"
        else:
            ratio = (
                f"p50 {lateness.p50_s / timer_base.p50_s:5.2f}x"
                f" p99 {lateness.p99_s / timer_base.p99_s:5.2f}x"
            )
        times = f"p50 {lateness.p50_s * 1000:7.1f} ms  p99 {lateness.p99_s * 1000:7.1f} ms"
        print(f"  {lateness.name:<58} {times}   {ratio}")
    print(f"  {'sla process peak memory (VmHWM)':<58} {sla_rss_mb:>12,.0f} MB")
    for extra in await eventstore.optional_figures():
        print(extra)


if __name__ == "__main__":
    asyncio.run(main())
