"""The shape every civicgrid service shares: a FastStream NATS broker, an HTTP app with
/healthz, /readyz and /metrics, and start-up hooks that run once the bus is connected.

A service's own ``app.py`` is its composition root: it builds a ``Service``, attaches its
consumers and routes, and hands it to ``run``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from faststream.nats import NatsBroker
from faststream.nats.prometheus import NatsPrometheusMiddleware
from faststream.security import SASLPlaintext
from nats.errors import NoRespondersError
from nats.js import JetStreamContext
from nats.js.errors import ServiceUnavailableError
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from civicgrid.events import streams
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import (
    ConsumerMetrics,
    ConsumerSpec,
    Delivery,
    EventConsumer,
    Handler,
)
from civicgrid.events.dead_letters import DeadLetterPublisher
from civicgrid.events.known_histories import KnownHistories, history_reads_counter
from civicgrid.events.pull_loop import PullLoop
from civicgrid.events.redrive import redrive_spec
from civicgrid.events.store import EventStore, History, StoredEvent
from civicgrid.servicekit import serving
from civicgrid.servicekit.logging import configure_logging
from civicgrid.servicekit.seeds import NatsSeeds
from civicgrid.servicekit.settings import ServiceSettings

log = structlog.get_logger("civicgrid.service")

STOP_BROKER_WITHIN_S = 10.0

Hook = Callable[[], Awaitable[None]]

START_RETRY_FIRST_S = 0.5
START_RETRY_MAX_S = 5.0
# What JetStream answers while a stream or consumer has no leader (a node just died).
JETSTREAM_NOT_ANSWERING: tuple[type[BaseException], ...] = (
    TimeoutError,
    NoRespondersError,
    ServiceUnavailableError,
)
ReadinessCheck = Callable[[], Awaitable[str | None]]


@dataclass
class Service:
    settings: ServiceSettings
    title: str
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    broker: NatsBroker = field(init=False)
    http: FastAPI = field(init=False)
    consumers: list[EventConsumer] = field(default_factory=list)
    on_connected: list[Hook] = field(default_factory=list)
    on_stopping: list[Hook] = field(default_factory=list)
    readiness_checks: list[ReadinessCheck] = field(default_factory=list)
    _started: bool = False
    _store: EventStore | None = None
    _decisions: KnownHistories | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _pull_loops: list[PullLoop] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.broker = NatsBroker(
            **_broker_connection(self.settings.nats_seeds),
            name=self.settings.instance,
            middlewares=[
                NatsPrometheusMiddleware(registry=self.registry, app_name=self.settings.service)
            ],
            max_reconnect_attempts=-1,
            # Per-message lines at DEBUG: at INFO they would drown the service's own log.
            log_level=logging.DEBUG,
            # A plain stdlib logger, so the records reach our JSON handler instead of
            # FastStream's own coloured console one.
            logger=logging.getLogger("civicgrid.faststream"),
        )
        self.consumer_metrics = ConsumerMetrics.create(self.registry)
        self.consumer_pending = Gauge(
            "civicgrid_consumer_pending",
            "Messages not yet delivered to a consumer (its lag)",
            ["service", "consumer"],
            registry=self.registry,
        )
        self.dead_letters = DeadLetterPublisher(lambda: self.jetstream, self.settings.service)
        # /docs and /redoc load their assets from the service itself (fastapi-offline ships
        # them): a city's operations network is often offline. No validator badge either:
        # Swagger UI would fetch it from validator.swagger.io.
        self.http = FastAPIOffline(
            title=self.title,
            lifespan=self._lifespan,
            swagger_ui_parameters={"validatorUrl": None},
        )
        self._add_operational_routes()

    @property
    def jetstream(self) -> JetStreamContext:
        return self.broker.connection.jetstream()

    @property
    def decisions(self) -> KnownHistories:
        """The event store as a DecisionStore, usable before the bus is connected (handlers
        are wired at build time; the store exists once ``start`` has connected).

        It keeps the whole histories it can prove from what this service's consumers of the
        incidents' stream are delivered and what it appends (``known_histories``), so a
        reaction to an event just seen decides without reading its history again.
        """
        if self._decisions is None:
            self._decisions = KnownHistories(
                ConnectedStore(self),
                size=self.settings.history_cache_size,
                reads=history_reads_counter(self.registry),
                service=self.settings.service,
            )
        return self._decisions

    @property
    def store(self) -> EventStore:
        if self._store is None:
            raise RuntimeError("the event store is available once the bus is connected")
        return self._store

    def consume(self, spec: ConsumerSpec, handler: Handler) -> EventConsumer:
        if spec.stream == streams.INCIDENTS:
            handler = self._shown_to_decisions(handler)
        consumer = EventConsumer(spec, handler, self.dead_letters, self.consumer_metrics)
        self.consumers.append(consumer)
        return consumer

    def _shown_to_decisions(self, handler: Handler) -> Handler:
        """The handler, after the event it is handed has been shown to the known histories."""

        async def shown_first(value: Any, delivery: Delivery) -> None:
            if self._decisions is not None and isinstance(value, IncidentEvent):
                self._decisions.observe(
                    delivery.subject, delivery.stream_sequence, delivery.headers, event=value
                )
            await handler(value, delivery)

        return shown_first

    async def start(self) -> None:
        configure_logging(self.settings.service, self.settings.log_level)
        # Until NATS answers, this waits (retrying for ever): run it where a signal can cancel
        # it, as ``run`` does.
        log.info("connecting", nats=self.settings.nats_seeds.shown())
        await self.broker.connect()
        self._store = EventStore(self.jetstream)
        for hook in self.on_connected:
            await while_jetstream_recovers(hook, getattr(hook, "__qualname__", repr(hook)))
        await self.broker.start()
        for consumer in self.consumers:
            # Each work consumer, and its twin taking replays of its dead letters.
            replays = EventConsumer(
                redrive_spec(consumer.spec),
                consumer.handler,
                self.dead_letters,
                self.consumer_metrics,
            )
            for each in (consumer, replays):
                loop = PullLoop(each, self.jetstream)
                await while_jetstream_recovers(loop.start, f"consumer {loop.durable}")
                self._pull_loops.append(loop)
                self._report_lag(loop)
        self._started = True
        log.info(
            "service_started",
            port=self.settings.http_port,
            nats=self.settings.nats_seeds.shown(),
        )

    async def stop(self) -> None:
        self._started = False
        for task in self._background:
            task.cancel()
        await asyncio.gather(*(loop.stop() for loop in self._pull_loops))
        self._pull_loops.clear()
        for hook in self.on_stopping:
            # Also after a start abandoned half way: one failing hook must not keep the
            # connection open.
            try:
                await hook()
            except Exception as exc:
                log.warning("stopping_hook_failed", hook=repr(hook), error=repr(exc))
        try:
            # A connection broken under it (NATS gone, a pipe closed) must not keep a stopping
            # service for the client's drain timeouts (30 s each), nor make stopping fail.
            await asyncio.wait_for(self.broker.stop(), timeout=STOP_BROKER_WITHIN_S)
        except Exception as exc:
            log.warning("broker_stop_failed", error=repr(exc)[:500])
        log.info("service_stopped")

    async def problems(self) -> list[str]:
        found: list[str] = []
        if not self._started:
            found.append("starting")
        elif not self.broker.connection.is_connected:
            found.append("not connected to NATS")
        for loop in self._pull_loops:
            if not loop.running:
                found.append(f"consumer {loop.durable} stopped")
            elif loop.missing:
                found.append(f"consumer {loop.durable} missing on the server")
        for check in self.readiness_checks:
            problem = await check()
            if problem:
                found.append(problem)
        return found

    @contextlib.asynccontextmanager
    async def _lifespan(self, _app: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    def _add_operational_routes(self) -> None:
        @self.http.get("/healthz", include_in_schema=False)
        async def healthz() -> dict[str, str]:
            return {"status": "ok", "service": self.settings.service}

        @self.http.get("/readyz", include_in_schema=False)
        async def readyz() -> JSONResponse:
            problems = await self.problems()
            status = 200 if not problems else 503
            body = {"ready": not problems, "service": self.settings.service, "problems": problems}
            return JSONResponse(body, status_code=status)

        @self.http.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def _report_lag(self, loop: PullLoop) -> None:
        # The loop samples its durable every few seconds, the same before and after the
        # durable is recreated, so the series goes on under the same labels.
        child = self.consumer_pending.labels(self.settings.service, loop.durable)
        child.set_function(lambda: float("nan") if loop.pending is None else loop.pending)


async def while_jetstream_recovers(
    step: Hook, what: str, on_retry: Callable[[str], None] | None = None
) -> None:
    """Run one start-up step, again after a pause while JetStream does not answer.

    Connected is not yet answered: right after a cluster node dies, the streams and consumers
    it led elect new leaders, and their API calls time out or say "unavailable" meanwhile. A
    service (re)starting then waits it out, unready, instead of exiting into a restart loop.
    A stop cancels the wait like any other start-up step.
    """
    pause = START_RETRY_FIRST_S
    while True:
        try:
            await step()
            return
        except JETSTREAM_NOT_ANSWERING as exc:
            log.warning("start_step_retrying", step=what, error=repr(exc), retry_in_s=pause)
            if on_retry is not None:
                on_retry(f"{what}: JetStream not answering ({exc!r}); retrying in {pause:.1f}s")
        await asyncio.sleep(pause)
        pause = min(pause * 2, START_RETRY_MAX_S)


def _broker_connection(seeds: NatsSeeds) -> dict[str, Any]:
    """Every seed for the broker, the credentials apart (they hold for the whole cluster)."""
    if seeds.user is not None and seeds.password is not None:
        return {
            "servers": list(seeds.servers),
            "security": SASLPlaintext(username=seeds.user, password=seeds.password),
        }
    if seeds.user is not None:
        # A token: nats-py reads it from the URL of the server it dials.
        token = seeds.user
        return {"servers": [url.replace("://", f"://{token}@", 1) for url in seeds.servers]}
    return {"servers": list(seeds.servers)}


def run(service: Service) -> None:
    """Serve HTTP and the bus until SIGTERM or SIGINT, which stop it promptly at any moment."""
    serving.run(service)


@dataclass(frozen=True)
class ConnectedStore:
    """``decide_and_append``'s store, resolved through the service on every call."""

    service: Service

    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        return await self.service.store.load(incident_id, at_least=at_least)

    async def last_sequence(self, incident_id: str) -> int:
        return await self.service.store.last_sequence(incident_id)

    async def append_decision(
        self,
        events: Sequence[IncidentEvent],
        *,
        cause: str,
        fingerprint: str,
        expected_version: int,
    ) -> list[StoredEvent]:
        return await self.service.store.append_decision(
            events, cause=cause, fingerprint=fingerprint, expected_version=expected_version
        )
