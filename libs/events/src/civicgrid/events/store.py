"""The event store: JetStream as an append-only log per incident (design section 3)."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import APIError

from civicgrid.events import streams, subjects, wire
from civicgrid.events.base import IncidentEvent
from civicgrid.events.direct_get import RawMessage
from civicgrid.events.models import load_event_json

WRONG_LAST_SEQUENCE = 10071
BATCH_HAS_DUPLICATE_MSG_ID = 10201
NO_EVENTS_YET = 0
_BATCH = 256
# Every event type an incident can have, many times over: one multi-last answer holds them all.
_MAX_SUBJECTS = 1024
_MIN_LAST_SEQ_NOT_REACHED = "412"
_STALE_REPLICA_RETRIES = 20
_STALE_REPLICA_PAUSE_S = 0.05


class StoreReadError(Exception):
    pass


class StoreWriteError(Exception):
    """The server refused an append for a reason other than a concurrent writer."""


_RawMessage = RawMessage


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
    # Cause key -> fingerprint of every decision stored for this incident (from headers; for
    # events written before causes travelled as headers, the causation id with no fingerprint).
    causes: Mapping[str, str] = field(default_factory=dict)

    @property
    def version(self) -> int:
        """The stream sequence of the last event: what the next append must expect."""
        return self.events[-1].sequence if self.events else NO_EVENTS_YET

    def __iter__(self) -> Iterator[IncidentEvent]:
        return (stored.event for stored in self.events)

    def __len__(self) -> int:
        return len(self.events)


def is_whole_history(lasts: Sequence[RawMessage], incident_subjects: str) -> bool:
    """Whether the last message of each of an incident's subjects is all it has.

    Each decision is stored with the sequence of the incident's event before it, which the
    server checked (``Nats-Expected-Last-Subject-Sequence`` on ``incident.<id>.*``); the later
    messages of an atomic batch follow the one before them. Going back from the newest along
    those links through these messages alone, down to "nothing before", proves that no event
    of the incident is missing, and the per-subject reads are not needed: a new incident's
    history, or one whose every event type occurs once, costs one request instead of two.
    """
    by_sequence = {raw.sequence: raw for raw in lasts}
    raw = max(lasts, key=lambda raw: raw.sequence, default=None)
    walked = 0
    while raw is not None:
        walked += 1
        headers = raw.headers
        if headers.get(wire.EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT) == incident_subjects:
            previous = int(headers.get(wire.EXPECTED_LAST_SUBJECT_SEQUENCE, "-1"))
        elif int(headers.get(wire.BATCH_SEQUENCE, "0")) > 1:
            previous = raw.sequence - 1
        else:
            return False  # appended without an expectation: nothing says what came before
        if previous == NO_EVENTS_YET:
            return walked == len(lasts)
        raw = by_sequence.get(previous)
    return not lasts


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

    async def append_decision(
        self,
        events: Sequence[IncidentEvent],
        *,
        cause: str,
        fingerprint: str,
        expected_version: int,
    ) -> list[StoredEvent]:
        """Append one decision's events to one incident: all of them or none.

        Several events go as one JetStream atomic batch (ADR-50): the expected-sequence check
        rides on the first message and the server checks it when the batch commits, so a
        stale decision stores nothing and a crash mid-way leaves no half. Every event carries
        the cause and its fingerprint as headers, and a message id derived from the cause.

        Raises ``ConcurrencyConflict`` when the incident moved on since ``expected_version``
        (or the decision was stored already): load again and decide again.
        """
        if not events:
            return []
        incident_id = events[0].incident_id
        if any(event.incident_id != incident_id for event in events):
            raise ValueError("a decision appends to one incident; effects on others are reactions")
        messages = [
            (wire.event_subject(event), wire.encode(event), self._decision_headers(event, n))
            for n, event in enumerate(events)
        ]
        for _, _, headers in messages:
            headers[wire.CAUSE] = cause
            headers[wire.FINGERPRINT] = fingerprint
        first = messages[0][2]
        first[wire.EXPECTED_LAST_SUBJECT_SEQUENCE] = str(expected_version)
        first[wire.EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT] = subjects.incident_events(incident_id)
        for n, (_, _, headers) in enumerate(messages):
            headers[wire.MSG_ID] = f"{cause}:{incident_id}:{n}"
        ack = await (
            self._publish_one(*messages[0]) if len(messages) == 1 else self._publish_batch(messages)
        )
        error = ack.get("error")
        if error is not None:
            if error.get("err_code") in (WRONG_LAST_SEQUENCE, BATCH_HAS_DUPLICATE_MSG_ID):
                raise ConcurrencyConflict(incident_id, expected_version, error.get("description"))
            raise StoreWriteError(f"incident {incident_id}: {error}")
        if ack.get("duplicate"):
            # The check passed yet the id was known: it was stored under another expectation.
            raise ConcurrencyConflict(incident_id, expected_version, "duplicate message id")
        last = int(ack["seq"])
        first_sequence = last - len(events) + 1
        return [StoredEvent(first_sequence + n, event) for n, event in enumerate(events)]

    @staticmethod
    def _decision_headers(event: IncidentEvent, _n: int) -> dict[str, str]:
        headers = wire.cloudevents_headers(event)
        headers["Nats-Expected-Stream"] = streams.INCIDENTS
        return headers

    async def _publish_one(self, subject: str, data: bytes, headers: dict[str, str]) -> Any:
        reply = await self._js._nc.request(subject, data, timeout=self._timeout, headers=headers)
        return json.loads(reply.data)

    async def _publish_batch(self, messages: list[tuple[str, bytes, dict[str, str]]]) -> Any:
        nc = self._js._nc
        batch_id = uuid.uuid4().hex
        last = len(messages)
        for n, (subject, data, headers) in enumerate(messages, start=1):
            headers[wire.BATCH_ID] = batch_id
            headers[wire.BATCH_SEQUENCE] = str(n)
            if n == last:
                headers[wire.BATCH_COMMIT] = "1"
                reply = await nc.request(subject, data, timeout=self._timeout, headers=headers)
                return json.loads(reply.data)
            if n == 1:
                # The server acknowledges the start of a batch (or says why it refuses it).
                reply = await nc.request(subject, data, timeout=self._timeout, headers=headers)
                if reply.data:
                    refused = json.loads(reply.data)
                    if "error" in refused:
                        return refused
            else:
                await nc.publish(subject, data, headers=headers)
        raise AssertionError("unreachable: the last message commits")

    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        """The incident's events in stream order, upcast to the current models.

        The cost follows the incident's own events, not the stream's length: a multi-last
        Direct Get finds the incident's subjects (one per event type) and its last event from
        the server's subject index, then each subject is read by its literal name, bounded by
        its last event, all requests at once. (A wildcard ``next_by_subj`` read scans every
        message block after the incident's first event: 15 ms at the head of a 1M-message
        stream against 0.2 ms at its tail.)

        ``at_least``: a stream sequence the reader knows exists (the event it is handling). A
        replica that has not applied it yet answers 412 and the read is asked again, so a
        decision is never taken on a follower's stale view of the incident.
        """
        raws = await self._load_raw(incident_id, at_least)
        stored = [StoredEvent(raw.sequence, load_event_json(raw.data)) for raw in raws]
        causes: dict[str, str] = {}
        for raw, event in zip(raws, stored, strict=True):
            cause = raw.headers.get(wire.CAUSE) or event.event.causation_id
            if cause is not None:
                causes.setdefault(cause, raw.headers.get(wire.FINGERPRINT, ""))
        return History(incident_id, tuple(stored), causes)

    async def _load_raw(self, incident_id: str, at_least: int) -> list[_RawMessage]:
        filter_subject = subjects.incident_events(incident_id)
        lasts = await self._direct_get(
            {"multi_last": [filter_subject], "batch": _MAX_SUBJECTS}, at_least
        )
        if is_whole_history(lasts, filter_subject):
            return sorted(lasts, key=lambda raw: raw.sequence)
        earlier = await asyncio.gather(
            *(
                self._read_subject(raw.headers["Nats-Subject"], raw.sequence, at_least)
                for raw in lasts
            )
        )
        return sorted(itertools.chain(lasts, *earlier), key=lambda raw: raw.sequence)

    async def _already_stored(self, incident_id: str, after: int, msg_id: str) -> int | None:
        """The sequence of an event appended after ``after`` with this message id, if any.

        The server checks the expected sequence before its duplicate window, so a retry that
        carries its original expectation is refused as a conflict; this tells the two apart.
        """
        for raw in await self._load_raw(incident_id, after):
            if raw.sequence > after and raw.headers.get(wire.MSG_ID) == msg_id:
                return raw.sequence
        return None

    async def _read_subject(self, subject: str, before: int, at_least: int) -> list[_RawMessage]:
        """Every message on one literal subject with a sequence below ``before``.

        A literal subject is found through the server's subject index (its first and last
        block), unlike a wildcard. ``up_to_seq`` does not bound a ``next_by_subj`` batch, so
        what was appended after the multi-last snapshot is dropped here.
        """
        found: list[_RawMessage] = []
        next_sequence = 1
        while next_sequence < before:
            request = {"seq": next_sequence, "next_by_subj": subject, "batch": _BATCH}
            batch = await self._direct_get(request, at_least)
            found += (raw for raw in batch if raw.sequence < before)
            if len(batch) < _BATCH or batch[-1].sequence >= before:
                break
            next_sequence = batch[-1].sequence + 1
        return found

    async def _direct_get(self, request: dict[str, Any], at_least: int) -> list[_RawMessage]:
        if at_least:
            request = {**request, "min_last_seq": at_least}
        for _ in range(_STALE_REPLICA_RETRIES):
            received = await self._direct_get_once(request)
            if received is not None:
                return received
            await asyncio.sleep(_STALE_REPLICA_PAUSE_S)
        raise StoreReadError(f"no replica has reached sequence {at_least} for {request}")

    async def _direct_get_once(self, request: dict[str, Any]) -> list[_RawMessage] | None:
        """The messages a batched Direct Get answers; None from a replica that lags behind."""
        replies = await self._replies()
        token, queue = replies.open()
        try:
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
                    # 404: nothing matches; 204: end of this batch.
                    return received
                if status == _MIN_LAST_SEQ_NOT_REACHED:
                    return None
                if status is not None:
                    raise StoreReadError(
                        f"direct get {request}: {status} {headers.get('Description')}"
                    )
                received.append(_RawMessage(int(headers["Nats-Sequence"]), headers, msg.data))
                if "batch" not in request and "multi_last" not in request:
                    return received
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
