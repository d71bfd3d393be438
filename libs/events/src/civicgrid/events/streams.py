"""Stream definitions, and their idempotent provisioning (creating or updating in place)."""

from __future__ import annotations

from dataclasses import replace

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
INTAKE_DUPLICATES_BUCKET = "INTAKE_DUPLICATES"
# Longer than any duplicate window plus the oldest report intake admits (7 days back).
INTAKE_DUPLICATES_MAX_AGE_S = 9 * 24 * 3600.0
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
        # A decision of several events is stored whole or not at all (ADR-50 atomic batch).
        allow_atomic=True,
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


# Dead letters carry the original message byte for byte, and an incident event's original
# holds the citizen's name and phone: the DLQ keeps them no longer than this, nor beyond its
# size limit (the oldest letters go first). A replay request carries a copy of its letter, which
# is kept as long again from the replay.
DLQ_MAX_AGE_S = 30 * 24 * 3600.0
DLQ_MAX_BYTES = 1024**3


def dlq_stream(replicas: int = 1) -> StreamConfig:
    """Dead letters (``dlq.<service>``) and replay requests (``dlq.redrive.<service>.<durable>``).

    Personal data in a letter's copied original is gone from the DLQ after ``DLQ_MAX_AGE_S``
    (30 days) at the latest: limits retention, discard old.
    """
    return StreamConfig(
        name=DLQ,
        description="Messages a service could not handle, with the reason: dlq.<service>",
        subjects=[f"{subjects.DLQ_PREFIX}.>"],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_age=DLQ_MAX_AGE_S,
        max_bytes=DLQ_MAX_BYTES,
        discard=DiscardPolicy.OLD,
        duplicate_window=DUPLICATE_WINDOW_S,
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
    try:
        await js.key_value(INTAKE_DUPLICATES_BUCKET)
    except BucketNotFoundError:
        await js.create_key_value(
            KeyValueConfig(
                bucket=INTAKE_DUPLICATES_BUCKET,
                description="Duplicate-report claims per matter, time bucket and place (intake)",
                history=1,
                ttl=INTAKE_DUPLICATES_MAX_AGE_S,
                storage=StorageType.FILE,
                replicas=replicas,
                # Intake reads the claims near a report in one multi-last Direct Get.
                direct=True,
            )
        )
    else:
        claims = await js.stream_info(f"KV_{INTAKE_DUPLICATES_BUCKET}")
        if not claims.config.allow_direct:
            await js.update_stream(replace(claims.config, allow_direct=True))
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
