"""Runs every benchmark and prints each figure with its ratio to the raw-NATS baseline.

``python -m bench``: every row, also written as JSON; ``python -m bench end-to-end``: only the
end-to-end rows (about a minute; needs wrk), printed. ``python -m bench.profile`` samples the
services under the end-to-end load with py-spy.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import platform
import sys

from bench import (
    baseline,
    end_to_end,
    eventstore,
    history_at_scale,
    report_to_assigned,
    reporting,
    sla_timers,
)
from bench.harness import Figure, bench_server
from bench.table import Row, Table

SCALE = float(os.environ.get("CIVICGRID_BENCH_SCALE", "1.0"))


def _n(count: int) -> int:
    return max(100, int(count * SCALE))


def _rate(table: Table, section: str, figure: Figure, against: Row | None = None) -> Row:
    if against is None:
        return table.base(section, figure.name, figure.rate, figure.unit)
    return table.against(against, section, figure.name, figure.rate, figure.unit)


async def end_to_end_only() -> None:
    """``python -m bench end-to-end``: only the end-to-end rows (relay, mixed, storm)."""
    table = Table(scale=SCALE)
    _end_to_end_rows(table, await end_to_end.measure(max(5.0, 10 * SCALE)))
    print(table.render())


def _end_to_end_rows(table: Table, measured: end_to_end.Measured) -> None:
    e2e = "end to end: Open311 POST (wrk, 16 connections) -> projected in reporting"
    mixed = _rate(table, e2e, measured.mixed, _rate(table, e2e, measured.shaped_relay))
    _rate(table, e2e, measured.storm, mixed)
    thin = _rate(table, e2e, measured.thin_relay)
    again = dataclasses.replace(measured.mixed, name=f"{measured.mixed.name} (against the thin)")
    _rate(table, e2e, again, thin)
    print(f"the relay's shape, from the platform's mixed run: {measured.shape.describe()}")
    print(f"  (its CPU per report: python -m bench.profile 10 relay '{measured.shape.encode()}')")


async def main() -> None:
    if sys.argv[1:] == ["end-to-end"]:
        await end_to_end_only()
        return
    print(f"civicgrid benchmarks on {platform.node()} ({os.cpu_count()} cores), scale {SCALE}")
    async with bench_server() as (server, client):
        raw_publish = await baseline.publish_windowed(client, _n(50_000))
        raw_pull = await baseline.pull_fetch_ack(client, raw_publish.count)
        raw_one = await baseline.publish_sequential(client, _n(5_000))
        store_append = await eventstore.append_new_incidents(client, _n(5_000))
        store_load = await eventstore.load_histories(client, _n(2_000))
        store_check = await eventstore.ask_the_leader(client, _n(2_000))
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
    table = Table(scale=SCALE)
    raw = "raw NATS baseline (same run, same server)"
    _rate(table, raw, raw_publish)
    one = _rate(table, raw, raw_one)
    _rate(table, raw, raw_pull)
    store = "event store"
    _rate(table, store, store_append, one)
    _rate(table, store, store_load, one)
    _rate(table, store, store_check, one)
    routed = "report -> assigned (routing service, shipped city)"
    for quantile in ("p50", "p99"):
        base = table.base(
            routed,
            f"{raw_latency.name} {quantile}",
            getattr(raw_latency, f"{quantile}_ms"),
            "ms",
            higher_is_better=False,
        )
        table.against(base, routed, f"{routed_latency.name} {quantile}",
                      getattr(routed_latency, f"{quantile}_ms"))  # fmt: skip
    _rate(table, routed, routed_flow, _rate(table, routed, raw_flow))
    projected = "reporting (read model on SQLite; the whole INCIDENTS stream)"
    _rate(table, projected, rebuild, _rate(table, projected, raw_ordered))
    for query in stats:
        table.base(projected, query.name, query.seconds * 1000, "ms", higher_is_better=False)
    history = "history loads in a long stream (raw: one wildcard Direct Get, the old read)"
    for ours, old in zip(long_stream[::2], long_stream[1::2], strict=True):
        _rate(table, history, ours, _rate(table, history, old))
    window = sla_timers.window_for(deadlines)
    timers = f"timer firing lateness, {deadlines:,} pending deadlines over {window:.0f} s"
    for quantile in ("p50", "p99"):
        base = table.base(
            timers,
            f"{timer_base.name} {quantile}",
            getattr(timer_base, f"{quantile}_s") * 1000,
            "ms",
            higher_is_better=False,
        )
        table.against(base, timers, f"{timer_sla.name} {quantile}",
                      getattr(timer_sla, f"{quantile}_s") * 1000)  # fmt: skip
    memory = "memory"
    table.base(memory, "sla process peak memory (VmHWM)", sla_rss_mb, "MB", higher_is_better=False)
    if end_to_end.wrk_available():
        _end_to_end_rows(table, await end_to_end.measure(max(5.0, 10 * SCALE)))
    else:
        print("end to end: skipped, wrk is not installed (apt-get install wrk)")
    for row in await eventstore.optional_figures():
        table.add(row)
    print(table.render())
    print(f"written to {table.write()}")


if __name__ == "__main__":
    asyncio.run(main())
