"""Composition root of the sla service: configuration, policy book, two consumers, timers, HTTP.

- ``sla-clocks`` on INCIDENTS: the events that start, pause, move or stop a clock.
- ``sla-timers`` on SLA_TIMERS (``sla.fired.>``): deadline firings, fenced per clock version.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog
from nats.aio.msg import Msg

from civicgrid.events import durables, streams, timers
from civicgrid.events.base import IncidentEvent
from civicgrid.events.consumer import ConsumerSpec, Decoded, Delivery
from civicgrid.events.timers import TimerFiring, decode_firing
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from civicgrid.sla.auditor import Auditor
from civicgrid.sla.calendar_horizon import calendar_horizon, warn_if_calendar_ends_soon
from civicgrid.sla.config import SlaConfig, load_sla_config
from civicgrid.sla.domain.clocks import Clock, Clocks
from civicgrid.sla.domain.decide import default_notify_unit
from civicgrid.sla.domain.rules import TRIGGERS
from civicgrid.sla.handlers import SlaPorts, when_incident_event, when_timer_fired
from civicgrid.sla.http import install_sla_api
from civicgrid.sla.metrics import SlaMetrics
from civicgrid.sla.policy_store import PolicyBook, seed_policy
from civicgrid.sla.read_model import RunningClocks

log = structlog.get_logger("civicgrid.sla")

CLOCKS_CONSUMER = ConsumerSpec(
    service="sla",
    durable=durables.SLA_CLOCKS.name,
    filter_subjects=tuple(
        f"incident.*.{event_type}" for event_type in sorted(TRIGGERS | {"deadline_extended"})
    ),
)


def _decode_firing(msg: Msg) -> Decoded:
    """A timer firing, keyed by its incident: one incident's firings are handled in order."""
    firing = decode_firing(msg)
    return Decoded(key=firing.incident_id, value=firing)


TIMERS_CONSUMER = ConsumerSpec(
    service="sla",
    durable=durables.SLA_TIMERS.name,
    filter_subjects=("sla.fired.>",),
    stream=streams.SLA_TIMERS,
    backoff_s=(0.2, 1.0, 5.0, 15.0, 30.0),
    decode=_decode_firing,
)
# Counting schedules lists every schedule subject: not often.
PENDING_POLL_S = 60.0


class _JetStreamTimers:
    def __init__(self, service: Service) -> None:
        self._service = service

    async def arm(self, firing: TimerFiring) -> None:
        await timers.arm(self._service.jetstream, firing)

    async def cancel(self, incident_id: str, clock: str, stage: str) -> None:
        await timers.cancel(self._service.jetstream, incident_id, clock, stage)


class _CoreNotifier:
    def __init__(self, service: Service) -> None:
        self._service = service

    async def publish(self, subject: str, payload: bytes) -> None:
        await self._service.broker.connection.publish(subject, payload)


@dataclass
class SlaApp:
    service: Service
    ports: SlaPorts
    view: RunningClocks
    auditor: Auditor


def build(settings: ServiceSettings, **options: Any) -> Service:
    return compose(settings, **options).service


def compose(
    settings: ServiceSettings,
    *,
    config: SlaConfig | None = None,
    clocks_consumer: ConsumerSpec = CLOCKS_CONSUMER,
    timers_consumer: ConsumerSpec = TIMERS_CONSUMER,
    policy_bucket: str = streams.SLA_POLICY_BUCKET,
    policy_refresh_s: float = 1.0,
    now: Callable[[], datetime] | None = None,
    audit_grace_s: float = 60.0,
    audit_interval_s: float = 30.0,
) -> SlaApp:
    config = config or load_sla_config(settings.config_dir)
    service = Service(settings, title="civicgrid sla")
    policies = PolicyBook(
        lambda: service.jetstream, bucket=policy_bucket, refresh_s=policy_refresh_s
    )
    metrics = SlaMetrics.create(service.registry)
    metrics.calendar_covered_until.set_function(lambda: calendar_horizon(config.calendar))
    warn_if_calendar_ends_soon(config.calendar)

    def notify_unit(role: str, clocks: Clocks, clock: Clock) -> Any:
        unit = default_notify_unit(role, clocks, clock)
        if unit is not None and unit.kind.value == "command_centre":
            return config.command_centre
        return unit

    ports = SlaPorts(
        store=service.decisions,
        policies=policies,
        calendar=config.calendar,
        timers=_JetStreamTimers(service),
        notifier=_CoreNotifier(service),
        metrics=metrics,
        notify_unit=notify_unit,
        now=now or (lambda: datetime.now(UTC)),
    )
    view = RunningClocks(histories=service.decisions)
    ports.folded = view

    async def firings_backlog() -> int:
        info = await service.jetstream.consumer_info(
            timers_consumer.stream, timers_consumer.durable
        )
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    auditor = Auditor(
        view,
        ports,
        lambda: service.jetstream,
        grace_s=audit_grace_s,
        interval_s=audit_interval_s,
        firings_backlog=firings_backlog,
    )
    background: list[asyncio.Task[None]] = []

    async def seed_and_read_policy() -> None:
        await seed_policy(service.jetstream, config.configured_policy, bucket=policy_bucket)
        await policies.current()
        await view.start(service.jetstream)
        background.append(asyncio.create_task(_watch_pending(service, metrics)))
        background.append(asyncio.create_task(auditor.run_forever()))

    async def stop_background() -> None:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await view.stop()

    async def policy_loaded() -> str | None:
        return None if policies.last_seen is not None else "SLA policy not loaded"

    async def view_caught_up() -> str | None:
        return view.problem()

    async def audit_clean() -> str | None:
        return auditor.problem()

    async def on_event(event: IncidentEvent, delivery: Delivery) -> None:
        await when_incident_event(event, ports, at_least=delivery.stream_sequence)

    async def on_firing(firing: TimerFiring, _delivery: Delivery) -> None:
        await when_timer_fired(firing, ports)

    service.on_connected.append(seed_and_read_policy)
    service.on_stopping.append(stop_background)
    service.readiness_checks += [policy_loaded, view_caught_up, audit_clean]
    service.consume(clocks_consumer, on_event)
    service.consume(timers_consumer, on_firing)
    install_sla_api(service.http, ports, view, auditor, ports.now)
    return SlaApp(service, ports, view, auditor)


def asyncapi_schema() -> dict[str, Any]:
    """sla's AsyncAPI 3.0 document, built without connecting (defaults only)."""
    from civicgrid.servicekit.asyncapi import asyncapi_document
    from civicgrid.sla.asyncapi import complete

    service = build(ServiceSettings.from_env("sla", env={}))
    return complete(asyncapi_document(service), TIMERS_CONSUMER.durable)


async def _watch_pending(service: Service, metrics: SlaMetrics) -> None:
    while True:
        try:
            metrics.pending_schedules.set(await timers.pending_count(service.jetstream))
        except Exception as exc:
            log.warning("pending_schedules_sample_failed", error=str(exc))
        await asyncio.sleep(PENDING_POLL_S)
