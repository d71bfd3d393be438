"""The reporting projection as the projector sees it: the fact store, off the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from civicgrid.events.projector import ProjectedEvent
from civicgrid.reporting.fact_store import FactStore


@dataclass
class FactProjection:
    store: FactStore

    @property
    def name(self) -> str:
        return self.store.name

    async def load_position(self) -> int:
        return await asyncio.to_thread(self.store.position)

    async def apply(self, events: Sequence[ProjectedEvent], *, after: int, position: int) -> None:
        # Database work in a thread: a big catch-up batch must not stall the HTTP API.
        await asyncio.to_thread(self.store.apply, events, after=after, position=position)
