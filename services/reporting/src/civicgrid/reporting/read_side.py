"""The live read model (a database and the projector that fills it), and its rebuild beside it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from nats.js import JetStreamContext
from sqlalchemy.engine import Engine

from civicgrid.events import streams, subjects
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.projector import Projector, ProjectorMetrics
from civicgrid.reporting.database import GenerationPointer, open_database
from civicgrid.reporting.fact_store import FactStore
from civicgrid.reporting.projection import FactProjection

log = structlog.get_logger("civicgrid.reporting")


@dataclass
class Generation:
    number: int
    engine: Engine
    projector: Projector


@dataclass
class ReadSide:
    url: str
    pointer: GenerationPointer
    zone: ZoneInfo
    jetstream: Callable[[], JetStreamContext]
    dead_letters: DeadLetterPublisher
    metrics: ProjectorMetrics
    stream: str = streams.INCIDENTS
    filter_subject: str = subjects.ALL_INCIDENT_EVENTS
    live: Generation | None = None
    building: Generation | None = None
    last_rebuild: dict[str, Any] = field(default_factory=dict)

    async def open(self) -> None:
        self.live = await self._start(self.pointer.current())

    async def close(self) -> None:
        for generation in (self.building, self.live):
            if generation is not None:
                await generation.projector.stop()
                generation.engine.dispose()

    async def stream_last(self) -> int:
        """The stream's last sequence now (asked of the server, not the projector's sample)."""
        info = await self.jetstream().stream_info(self.stream)
        return int(info.state.last_seq)

    def engine(self) -> Engine:
        if self.live is None:
            raise RuntimeError("the read model is not open yet")
        return self.live.engine

    def problem(self) -> str | None:
        if self.live is None:
            return "read model not open"
        return self.live.projector.problem()

    async def wait_for(self, sequence: int, timeout_s: float) -> bool:
        return self.live is not None and await self.live.projector.wait_for(sequence, timeout_s)

    def status(self) -> dict[str, Any]:
        live = self.live
        return {
            "generation": live.number if live else None,
            "position": live.projector.position if live else 0,
            "lag": live.projector.lag if live else None,
            "caught_up": live.projector.caught_up if live else False,
            "rebuild": self.last_rebuild
            | (
                {
                    "generation": self.building.number,
                    "position": self.building.projector.position,
                    "lag": self.building.projector.lag,
                }
                if self.building
                else {}
            ),
        }

    async def rebuild(self) -> int:
        """Project the stream from its start into a new generation; switch once caught up."""
        if self.building is not None:
            return self.building.number
        assert self.live is not None
        number = self.live.number + 1
        self.last_rebuild = {"state": "building", "generation": number}
        await self._start(number, rebuild=True)
        return number

    async def _switch(self, building: Generation) -> None:
        old = self.live
        self.pointer.switch(building.number)
        self.live, self.building = building, None
        self.last_rebuild = {"state": "switched", "generation": building.number}
        log.info("read_model_switched", generation=building.number)
        if old is not None:
            # Not awaited inline: this runs inside the new projector's loop, and the old one
            # stops independently of it.
            asyncio.get_running_loop().create_task(self._retire(old))

    async def _retire(self, old: Generation) -> None:
        await old.projector.stop()
        self.metrics.position.remove(old.projector.name)
        self.metrics.lag.remove(old.projector.name)
        old.engine.dispose()

    async def _start(self, number: int, *, rebuild: bool = False) -> Generation:
        engine = await asyncio.to_thread(open_database, self.url, generation=number)
        store = FactStore(engine, name=f"incident_facts_g{number}", zone=self.zone)
        projector = Projector(
            FactProjection(store),
            self.jetstream,
            self.dead_letters,
            self.metrics,
            stream=self.stream,
            filter_subject=self.filter_subject,
        )
        generation = Generation(number, engine, projector)
        if rebuild:
            self.building = generation

            async def switch() -> None:
                await self._switch(generation)

            projector.when_caught_up(switch)
        await projector.start()
        return generation
