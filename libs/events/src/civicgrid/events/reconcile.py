"""Makes a durable consumer on the server what its spec says, at start and whenever it is missing.

``pull_subscribe`` creates a consumer only when none exists, so a changed filter, ``max_deliver``
or ``ack_wait`` never reached an existing durable. Here the wanted config is compared with the
server's: nothing to do, create it (missing), update it in place (what the server allows:
filters, limits, ack wait, back-off), or delete and recreate it (what it refuses to update, such
as the ack policy). Every difference is logged.

Where a durable starts (deliver policy, start sequence) matters only when it is first created:
once it has read part of the stream, its position is what counts. So a different deliver policy
on an existing durable is logged and kept, and a recreated durable resumes after the old one's
ack floor instead of replaying the whole stream (``ALL``) or skipping what was pending (``NEW``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Literal

import structlog
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, ConsumerInfo, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

log = structlog.get_logger("civicgrid.consumer")

# Compared and applied; the start position (deliver policy, start sequence) is not, see above.
COMPARED = ("ack_policy", "ack_wait", "max_deliver", "backoff", "max_ack_pending", "filters")
# nats-server: "<field> can not be updated" comes with this code (JSConsumerCreateErrF).
NOT_UPDATABLE = 10012

Action = Literal["unchanged", "created", "updated", "recreated"]


@dataclass(frozen=True)
class Reconciled:
    action: Action
    differences: dict[str, tuple[object, object]]  # field -> (server's, wanted)
    info: ConsumerInfo


def differences(server: ConsumerConfig, wanted: ConsumerConfig) -> dict[str, tuple[object, object]]:
    found: dict[str, tuple[object, object]] = {}
    for name in COMPARED:
        have, want = _comparable(server, name), _comparable(wanted, name)
        if have != want:
            found[name] = (have, want)
    return found


def _comparable(config: ConsumerConfig, name: str) -> object:
    if name == "filters":
        # The server may keep one filter in either field.
        return sorted({*(config.filter_subjects or ()), *filter(None, [config.filter_subject])})
    value = getattr(config, name)
    if isinstance(value, Enum):
        # The server's answer holds plain strings; the wanted config, enums of them.
        return value.value
    if name == "ack_wait" and config.backoff:
        # With a back-off the server waits backoff[0] for the first ack, whatever ack_wait says.
        value = config.backoff[0]
    if name in ("ack_wait", "backoff"):
        # Seconds travel as nanoseconds: compare at millisecond precision.
        if isinstance(value, list):
            return [round(step, 3) for step in value] or None
        return None if value is None or math.isnan(value) else round(value, 3)
    return value


async def reconcile_consumer(
    js: JetStreamContext,
    stream: str,
    wanted: ConsumerConfig,
    *,
    resume_after: int | None = None,
) -> Reconciled:
    """Create, update or recreate the durable ``wanted.durable_name`` on ``stream``.

    ``resume_after``: for a durable that has gone missing, the last ack floor (a stream
    sequence) seen before, so the new one starts after it instead of at its deliver policy.
    """
    durable = wanted.durable_name
    assert durable is not None, "only durable consumers are reconciled"
    try:
        current = await js.consumer_info(stream, durable)
    except NotFoundError:
        config = wanted if resume_after is None else _resuming(wanted, resume_after)
        info = await js.add_consumer(stream, config)
        log.warning("consumer_created", consumer=durable, stream=stream, resume_after=resume_after)
        return Reconciled("created", {}, info)
    found = differences(current.config, wanted)
    if current.config.deliver_policy != wanted.deliver_policy:
        log.info(
            "consumer_start_position_kept",
            consumer=durable,
            server=str(current.config.deliver_policy),
            wanted=str(wanted.deliver_policy),
        )
    if not found:
        return Reconciled("unchanged", {}, current)
    shown = {name: {"server": have, "wanted": want} for name, (have, want) in found.items()}
    try:
        # A create request for an existing durable updates it where the server allows.
        info = await js.add_consumer(stream, _keeping_start(wanted, current.config))
    except APIError as exc:
        if exc.err_code != NOT_UPDATABLE:
            raise
        await js.delete_consumer(stream, durable)
        info = await js.add_consumer(stream, _resuming(wanted, current.ack_floor.stream_seq))
        log.warning(
            "consumer_recreated",
            consumer=durable,
            differences=shown,
            because=exc.description,
            resumed_after=current.ack_floor.stream_seq,
        )
        return Reconciled("recreated", found, info)
    log.warning("consumer_updated", consumer=durable, differences=shown)
    return Reconciled("updated", found, info)


def _keeping_start(wanted: ConsumerConfig, server: ConsumerConfig) -> ConsumerConfig:
    return wanted.evolve(
        deliver_policy=server.deliver_policy,
        opt_start_seq=server.opt_start_seq,
        opt_start_time=server.opt_start_time,
    )


def _resuming(wanted: ConsumerConfig, ack_floor: int) -> ConsumerConfig:
    return wanted.evolve(
        deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=ack_floor + 1,
        opt_start_time=None,
    )
