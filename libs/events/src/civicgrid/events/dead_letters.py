"""The dead-letter stream: what a service could not handle, with why, kept for people to act on."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import BaseModel

from civicgrid.events import streams, subjects, wire


class DeadLetter(BaseModel):
    service: str
    consumer: str
    reason: str
    error: str
    original_subject: str
    original_stream: str | None
    original_sequence: int | None
    deliveries: int | None
    original_headers: dict[str, str]
    # Base64: the original may not be valid UTF-8, and the point is to keep it byte for byte.
    original_data_b64: str
    dead_at: datetime

    def original_data(self) -> bytes:
        return base64.b64decode(self.original_data_b64)


@dataclass(frozen=True)
class DeadLetterPublisher:
    # A provider, not a context: subscribers are wired before the broker has connected.
    jetstream: Callable[[], JetStreamContext]
    service: str

    async def publish(self, msg: Msg, *, consumer: str, reason: str, error: str) -> DeadLetter:
        metadata = _metadata(msg)
        letter = DeadLetter(
            service=self.service,
            consumer=consumer,
            reason=reason,
            error=error[:2000],
            original_subject=msg.subject,
            original_stream=metadata[0],
            original_sequence=metadata[1],
            deliveries=metadata[2],
            original_headers=dict(msg.headers or {}),
            original_data_b64=base64.b64encode(msg.data).decode(),
            dead_at=datetime.now(UTC),
        )
        # One dead letter per original message, however often the failure repeats.
        msg_id = f"dlq:{self.service}:{consumer}:{metadata[0]}:{metadata[1] or msg.subject}"
        await self.jetstream().publish(
            subjects.dlq(self.service),
            letter.model_dump_json().encode(),
            stream=streams.DLQ,
            headers={wire.MSG_ID: msg_id, "civicgrid-dlq-reason": reason},
        )
        return letter


def _metadata(msg: Msg) -> tuple[str | None, int | None, int | None]:
    try:
        metadata = msg.metadata
    except Exception:
        return None, None, None
    return metadata.stream, metadata.sequence.stream, metadata.num_delivered
