"""Stream definitions, and their idempotent provisioning (creating or updating in place)."""

from __future__ import annotations

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BucketNotFoundError, NotFoundError

from civicgrid.events import subjects

INCIDENTS = "INCIDENTS"
SLA_TIMERS = "SLA_TIMERS"
DLQ = "DLQ"
ROUTING_POLICY_BUCKET = "ROUTING_POLICY"
SLA_POLICY_BUCKET = "SLA_POLICY"

# Long enough to cover any client's retry of one command; handlers stay idempotent beyond it.
DUPLICATE_WINDOW_S = 10 * 60.0


def incidents_stream(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=INCIDENTS,
        description="Every incident event: incident.<incident_id>.<event_type>",
        subjects=[subjects.ALL_INCIDENT_EVENTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        discard=DiscardPolicy.OLD,
        allow_direct=True,
        deny_delete=True,
        deny_purge=True,
    )


def sla_timers_stream(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=SLA_TIMERS,
        description="SLA deadline schedules (ADR-51) and their firings",
        subjects=[f"{subjects.SLA_TIMER_PREFIX}.>", f"{subjects.SLA_FIRED_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        duplicate_window=DUPLICATE_WINDOW_S,
        allow_msg_schedules=True,
        allow_rollup_hdrs=True,
        # Firings carry a TTL (timers.FIRING_TTL) so the limits-retention stream stays bounded.
        allow_msg_ttl=True,
    )


def dlq_stream(replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=DLQ,
        description="Messages a service could not handle, with the reason: dlq.<service>",
        subjects=[f"{subjects.DLQ_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
    )


def all_streams(replicas: int = 1) -> list[StreamConfig]:
    return [incidents_stream(replicas), sla_timers_stream(replicas), dlq_stream(replicas)]


async def ensure_streams(js: JetStreamContext, replicas: int = 1) -> None:
    """Create or update every stream and bucket; run by an admin identity before services start."""
    for config in all_streams(replicas):
        assert config.name is not None
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
    for bucket, what in (
        (ROUTING_POLICY_BUCKET, "Routing policy versions"),
        (SLA_POLICY_BUCKET, "SLA policy versions"),
    ):
        try:
            await js.key_value(bucket)
        except BucketNotFoundError:
            # Every version is kept: incidents in flight keep deciding with the one they
            # started on.
            await js.create_key_value(
                KeyValueConfig(
                    bucket=bucket,
                    description=f"{what}: key 'current' and one key per version",
                    history=64,
                    storage=StorageType.FILE,
                    replicas=replicas,
                )
            )
