"""The event store: JetStream as an append-only log per incident (design section 3)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError

from civicgrid.events import streams, subjects, wire
from civicgrid.events.base import IncidentEvent
from civicgrid.events.models import load_event_json

WRONG_LAST_SEQUENCE = 10071
NO_EVENTS_YET = 0
_BATCH = 256


class StoreReadError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _RawMessage:
    sequence: int
    headers: dict[str, str]
    data: bytes


class ConcurrencyConflict(Exception):
    """Someone appended to this incident since we read it: reload and decide again."""

    def __init__(self, incident_id: str, expected: int, detail: str) -> None:
        super().__init__(f"incident {incident_id}: expected last sequence {expected}: {detail}")
        self.incident_id = incident_id
        self.expected = expected


@dataclass(frozen=True, slots=True)
class StoredEvent:
    sequence: int
    event: IncidentEvent


@dataclass(frozen=True, slots=True)
class AppendResult:
    sequence: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class History:
    incident_id: str
    events: tuple[StoredEvent, ...]

    @property
    def version(self) -> int:
        """The stream sequence of the last event: what the next append must expect."""
        return self.events[-1].sequence if self.events else NO_EVENTS_YET

    def __iter__(self) -> Iterator[IncidentEvent]:
        return (stored.event for stored in self.events)

    def __len__(self) -> int:
        return len(self.events)


class EventStore:
    def __init__(self, js: JetStreamContext, *, timeout: float = 5.0) -> None:
        self._js = js
        self._timeout = timeout
        self._reply_router: _ReplyRouter | None = None

    async def append(
        self,
        event: IncidentEvent,
        *,
        msg_id: str,
        expected_version: int | None,
    ) -> AppendResult:
        """Append one event.

        ``expected_version`` is the incident's version the decision was made on (0 for a new
        incident); None appends unconditionally (for events whose order against others does
        not matter, e.g. a duplicate-safe notification). ``msg_id`` is derived from what caused
        the event, so a retry of the same cause is stored once.
        """
        headers = wire.cloudevents_headers(event)
        headers[wire.MSG_ID] = msg_id
        if expected_version is not None:
            headers[wire.EXPECTED_LAST_SUBJECT_SEQUENCE] = str(expected_version)
            headers[wire.EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT] = subjects.incident_events(
                event.incident_id
            )
        try:
            ack = await self._js.publish(
                wire.event_subject(event),
                wire.encode(event),
                timeout=self._timeout,
                stream=streams.INCIDENTS,
                headers=headers,
            )
        except APIError as exc:
            if exc.err_code == WRONG_LAST_SEQUENCE:
                assert expected_version is not None
                stored_at = await self._already_stored(event.incident_id, expected_version, msg_id)
                if stored_at is not None:
                    return AppendResult(sequence=stored_at, duplicate=True)
                raise ConcurrencyConflict(
                    event.incident_id, expected_version or 0, exc.description or ""
                ) from exc
            raise
        return AppendResult(sequence=ack.seq, duplicate=bool(ack.duplicate))

    async def append_all(
        self,
        events: Sequence[IncidentEvent],
        *,
        msg_id_prefix: str,
        expected_version: int,
    ) -> list[AppendResult]:
        """Append a decision's events in order, each expecting the one before.

        Message ids are ``<prefix>:<n>`` so a retried decision re-sends the same ids; after a
        crash between two appends, the retry stores only the missing ones.
        """
        results: list[AppendResult] = []
        expected = expected_version
        for index, event in enumerate(events):
            result = await self.append(
                event, msg_id=f"{msg_id_prefix}:{index}", expected_version=expected
            )
            results.append(result)
            expected = result.sequence
        return results

    async def load(self, incident_id: str) -> History:
        """The incident's events in stream order, upcast to the current models.

        Uses batched Direct Get (``next_by_subj`` + ``batch``): one request per 256 events and
        no consumer to create and delete, which matters when every command reloads its incident.
        """
        stored = [
            StoredEvent(raw.sequence, load_event_json(raw.data))
            async for raw in self._read(incident_id, after=NO_EVENTS_YET)
        ]
        return History(incident_id, tuple(stored))

    async def _already_stored(self, incident_id: str, after: int, msg_id: str) -> int | None:
        """The sequence of an event appended after ``after`` with this message id, if any.

        The server checks the expected sequence before its duplicate window, so a retry that
        carries its original expectation is refused as a conflict; this tells the two apart.
        """
        async for raw in self._read(incident_id, after=after):
            if raw.headers.get(wire.MSG_ID) == msg_id:
                return raw.sequence
        return None

    async def _read(self, incident_id: str, *, after: int) -> AsyncIterator[_RawMessage]:
        filter_subject = subjects.incident_events(incident_id)
        next_sequence = after + 1
        while True:
            batch = await self._direct_get_batch(filter_subject, next_sequence)
            for raw in batch:
                yield raw
            if len(batch) < _BATCH:
                return
            next_sequence = batch[-1].sequence + 1

    async def _direct_get_batch(self, filter_subject: str, from_sequence: int) -> list[_RawMessage]:
        replies = await self._replies()
        token, queue = replies.open()
        try:
            request = {"seq": from_sequence, "next_by_subj": filter_subject, "batch": _BATCH}
            await self._js._nc.publish(
                f"$JS.API.DIRECT.GET.{streams.INCIDENTS}",
                json.dumps(request).encode(),
                reply=replies.subject(token),
            )
            received: list[_RawMessage] = []
            while True:
                msg = await asyncio.wait_for(queue.get(), timeout=self._timeout)
                headers = dict(msg.headers or {})
                status = headers.get("Status")
                if status in ("404", "204"):
                    # 404: nothing at or after from_sequence; 204: end of this batch.
                    return received
                if status is not None:
                    raise StoreReadError(
                        f"direct get on {filter_subject}: {status} {headers.get('Description')}"
                    )
                received.append(_RawMessage(int(headers["Nats-Sequence"]), headers, msg.data))
        finally:
            replies.close(token)

    async def _replies(self) -> _ReplyRouter:
        if self._reply_router is None:
            router = _ReplyRouter(self._js._nc.new_inbox())
            await router.subscribe(self._js._nc)
            self._reply_router = router
        return self._reply_router


class _ReplyRouter:
    """One wildcard inbox for every history read, routed by token.

    A batched Direct Get answers with several messages, so nats-py's request() does not fit;
    a subscription per read would cost a SUB and an UNSUB round of protocol each time.
    """

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._queues: dict[str, asyncio.Queue[Msg]] = {}
        self._counter = itertools.count()

    async def subscribe(self, nc: NatsClient) -> None:
        await nc.subscribe(f"{self._prefix}.*", cb=self._route)

    def subject(self, token: str) -> str:
        return f"{self._prefix}.{token}"

    def open(self) -> tuple[str, asyncio.Queue[Msg]]:
        token = str(next(self._counter))
        queue: asyncio.Queue[Msg] = asyncio.Queue()
        self._queues[token] = queue
        return token, queue

    def close(self, token: str) -> None:
        self._queues.pop(token, None)

    async def _route(self, msg: Msg) -> None:
        queue = self._queues.get(msg.subject.rsplit(".", 1)[-1])
        if queue is not None:  # a late reply to a read that gave up is dropped
            queue.put_nowait(msg)
