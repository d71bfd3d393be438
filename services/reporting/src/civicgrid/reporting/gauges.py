"""Per-community Prometheus gauges, refreshed from the read model in the background.

Labels are community ids (and the clock's name): never an incident, an address or a person.
Ratios are for the current local month, like the monthly ranking; a community with nothing
decided yet has no ratio series rather than a made-up 0 or NaN.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from civicgrid.reporting.figures import Dimension, FigureRow, Period
from civicgrid.reporting.queries import grouped

log = structlog.get_logger("civicgrid.reporting")

REFRESH_S = 15.0


# eq=False: the registry keeps collectors in a dict, so they hash by identity.
@dataclass(eq=False)
class CommunityGauges(Collector):
    engine: Callable[[], Engine]
    zone: ZoneInfo
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    refresh_s: float = REFRESH_S
    all_time: list[FigureRow] = field(default_factory=list)
    this_month: list[FigureRow] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)

    def refresh(self) -> None:
        now = self.now()
        today = now.astimezone(self.zone).date()
        engine = self.engine()
        self.all_time = grouped(engine, Dimension.COMMUNITY, Period(), now)
        self.this_month = grouped(
            engine, Dimension.COMMUNITY, Period(date(today.year, today.month, 1), today), now
        )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._keep_fresh(), name="community-gauges")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _keep_fresh(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh)
            except Exception as exc:
                log.warning("community_gauges_refresh_failed", error=repr(exc))
            await asyncio.sleep(self.refresh_s)

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # dynamic: collected from the last refresh

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_now = GaugeMetricFamily(
            "civicgrid_open_incidents", "Incidents not closed", labels=["community"]
        )
        overdue = GaugeMetricFamily(
            "civicgrid_overdue_incidents",
            "Open, unresolved incidents past their resolve deadline",
            labels=["community"],
        )
        headline = GaugeMetricFamily(
            "civicgrid_local_resolution_ratio",
            "Resolved at grid or community level / all resolved, this month (target 0.9)",
            labels=["community"],
        )
        on_time = GaugeMetricFamily(
            "civicgrid_on_time_ratio",
            "Deadlines met / deadlines decided, this month, by clock",
            labels=["community", "clock"],
        )
        for row in self.all_time:
            if row.key is None:
                continue
            open_now.add_metric([row.key], row.counts["open"])
            overdue.add_metric([row.key], row.counts["overdue"])
        for row in self.this_month:
            if row.key is None:
                continue
            if (ratio := row.ratio("headline")) is not None:
                headline.add_metric([row.key], ratio)
            for clock in ("accept", "arrive", "resolve"):
                if (ratio := row.ratio(f"{clock}_on_time")) is not None:
                    on_time.add_metric([row.key, clock], ratio)
        yield from (open_now, overdue, headline, on_time)
