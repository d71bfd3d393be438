"""The event store: JetStream as an append-only log per incident (design section 3)."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.js import JetStreamContext
from nats.js.errors import APIError

from civicgrid.events import streams, subjects, wire
from civicgrid.events.base import IncidentEvent
from civicgrid.events.direct_get import (
    DirectGetError,
    DirectReader,
    RawMessage,
    until_caught_up,
)
from civicgrid.events.models import load_event_json

WRONG_LAST_SEQUENCE = 10071
BATCH_HAS_DUPLICATE_MSG_ID = 10201
NO_EVENTS_YET = 0
_BATCH = 256
# Every event type an incident can have, many times over: one multi-last answer holds them all.
_MAX_SUBJECTS = 1024
NO_MESSAGE_FOUND = 10037
_WRONG_LAST_SEQUENCE = re.compile(r"wrong last sequence: (\d+)")
# nats-server takes a limited number of atomic batches in flight per stream (50 by default) and
# refuses the others outright ("atomic publish too many inflight"): nothing of them is stored.
TOO_MANY_BATCHES_IN_FLIGHT = 10210
# This process's share of them: a consumer deciding on a fetched batch's incidents at once
# would go past the server's limit alone, and each refusal became a redelivery, after a back-off
# and with another history read. Room is left for the other writers (services, replicas).
BATCHES_IN_FLIGHT = 16


def _busy_server_pauses() -> Iterator[float]:
    """Pauses before offering a refused batch again: 5 ms doubling to 100 ms, ~1 s in all."""
    return itertools.chain((0.005, 0.01, 0.02, 0.04), itertools.repeat(0.1, 9))


class StoreReadError(Exception):
    pass


class StoreWriteError(Exception):
    """The server refused an append for a reason other than a concurrent writer."""


_RawMessage = RawMessage


@dataclass(frozen=True, slots=True)
class _Answer:
    messages: list[_RawMessage]
    # The answering replica's last stream sequence, where the answer says it (a multi-last).
    position: int | None


class ConcurrencyConflict(Exception):
    """Someone appended to this incident since we read it: reload and decide again."""

    def __init__(self, incident_id: str, expected: int, detail: str) -> None:
        super().__init__(f"incident {incident_id}: expected last sequence {expected}: {detail}")
        self.incident_id = incident_id
        self.expected = expected
        # The incident's last sequence as the server that refused had it ("wrong last
        # sequence: N", from the leader that checked the expectation); None if not said.
        found = _WRONG_LAST_SEQUENCE.search(detail or "")
        self.current = int(found.group(1)) if found else None


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


def note_cause(causes: dict[str, str], headers: Mapping[str, str], event: IncidentEvent) -> None:
    """Add a stored event's cause to a history's causes: the first fingerprint of a key counts.

    The cause travels as a header; events written before it did name it by causation id.
    """
    cause = headers.get(wire.CAUSE) or event.causation_id
    if cause is not None:
        causes.setdefault(cause, headers.get(wire.FINGERPRINT, ""))


def linked_previous(
    headers: Mapping[str, str], sequence: int, incident_subjects: str
) -> int | None:
    """The sequence of the incident's event right before this message, as the server checked
    it when storing it; None when nothing says (appended without an expectation).

    A decision is stored with ``Nats-Expected-Last-Subject-Sequence`` on ``incident.<id>.*``
    (0: the incident had no event); the later messages of an atomic batch follow the one
    before them.
    """
    if headers.get(wire.EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT) == incident_subjects:
        try:
            return int(headers[wire.EXPECTED_LAST_SUBJECT_SEQUENCE])
        except (KeyError, ValueError):
            return None
    try:
        batch_sequence = int(headers.get(wire.BATCH_SEQUENCE, "0"))
    except ValueError:
        return None
    return sequence - 1 if batch_sequence > 1 else None


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
        previous = linked_previous(raw.headers, raw.sequence, incident_subjects)
        if previous is None:
            return False  # appended without an expectation: nothing says what came before
        if previous == NO_EVENTS_YET:
            return walked == len(lasts)
        raw = by_sequence.get(previous)
    return not lasts


class EventStore:
    def __init__(self, js: JetStreamContext, *, timeout: float = 5.0) -> None:
        self._js = js
        self._timeout = timeout
        self._reader = DirectReader(js._nc, streams.INCIDENTS, timeout=timeout)
        self._batches = asyncio.Semaphore(BATCHES_IN_FLIGHT)

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
            self._publish_one(*messages[0])
            if len(messages) == 1
            else self._publish_batch_in_turn(messages)
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

    async def _publish_batch_in_turn(
        self, messages: list[tuple[str, bytes, dict[str, str]]]
    ) -> Any:
        """A batch, once this process has fewer than its share in flight; offered again, after a
        pause, while the server says it has too many (it stored nothing of it)."""
        pauses = _busy_server_pauses()
        while True:
            async with self._batches:
                ack = await self._publish_batch(messages)
            error = ack.get("error")
            if error is None or error.get("err_code") != TOO_MANY_BATCHES_IN_FLIGHT:
                return ack
            pause = next(pauses, None)
            if pause is None:
                return ack
            await asyncio.sleep(pause)

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

        In a replicated stream with ``allow_direct`` any replica may answer a Direct Get, and a
        follower answers from what it has applied, which can be behind what the leader
        acknowledged. Whatever answers, the history is one consistent snapshot (every event of
        the incident up to the answering replica's last sequence, no holes), and with
        ``at_least`` it is at least that recent:

        ``at_least``: a stream sequence the reader knows the incident has reached (the event it
        is handling, or ``last_sequence``'s answer). A replica that has not applied it yet is
        asked again, with growing pauses, up to about 3 s; then ``StoreReadError``. The check is
        made here, on what the answers say (nats-server 2.15 ignores a Direct Get's
        ``min_last_seq``; see ``_read_once``).
        """
        raws = await self._load_raw(incident_id, at_least)
        stored = [StoredEvent(raw.sequence, load_event_json(raw.data)) for raw in raws]
        causes: dict[str, str] = {}
        for raw, event in zip(raws, stored, strict=True):
            note_cause(causes, raw.headers, event.event)
        return History(incident_id, tuple(stored), causes)

    async def load_latest(self, incident_id: str) -> History:
        """The incident's history at least as recent as the leader's last write: for a read
        that decides outside ``decide_and_append`` (one more round trip, to the leader)."""
        latest = await self.last_sequence(incident_id)
        if latest == NO_EVENTS_YET:
            return History(incident_id, ())
        return await self.load(incident_id, at_least=latest)

    async def last_sequence(self, incident_id: str) -> int:
        """The incident's last stream sequence as the stream's leader has it (0: no events).

        Asked through the JetStream API (``STREAM.MSG.GET``), which only the leader answers,
        and the leader has applied every write it acknowledged: a ``load`` with this as
        ``at_least`` is not older than any acknowledged write when the question was asked. One
        round trip; the subject index finds the last message of ``incident.<id>.>`` without a
        scan.
        """
        request = {"last_by_subj": subjects.incident_events(incident_id)}
        reply = await self._js._nc.request(
            f"$JS.API.STREAM.MSG.GET.{streams.INCIDENTS}",
            json.dumps(request).encode(),
            timeout=self._timeout,
        )
        answer = json.loads(reply.data)
        error = answer.get("error")
        if error is not None:
            if error.get("err_code") == NO_MESSAGE_FOUND:
                return NO_EVENTS_YET
            raise StoreReadError(f"incident {incident_id}: the leader's last sequence: {error}")
        return int(answer["message"]["seq"])

    async def _load_raw(self, incident_id: str, at_least: int) -> list[_RawMessage]:
        raws = await until_caught_up(lambda: self._read_once(incident_id, at_least))
        if raws is None:
            raise StoreReadError(
                f"incident {incident_id}: no replica answered with stream sequence"
                f" {at_least} applied"
            )
        return raws

    async def _read_once(self, incident_id: str, at_least: int) -> list[_RawMessage] | None:
        """One consistent snapshot of the incident's messages; None from a replica behind.

        The multi-last answer ends with the replica's last stream sequence (``Nats-UpTo-
        Sequence``), read under the stream's read lock: that is how far this snapshot goes,
        and it must reach ``at_least``. (A ``min_last_seq`` in the request would say the same,
        but nats-server 2.15 has no such field and answers regardless.) No answer at all does
        not say how far the replica has got: with ``at_least`` set the incident has events, so
        that replica is behind. Each subject's earlier events may come from another replica:
        its read must reach the subject's last event of the snapshot, or that replica is
        behind too (a replica applies the stream in order, so having that event it has every
        earlier one).
        """
        filter_subject = subjects.incident_events(incident_id)
        lasts = await self._direct_get_once(
            {"multi_last": [filter_subject], "batch": _MAX_SUBJECTS}
        )
        if not lasts.messages:
            return None if at_least else []
        if at_least and (lasts.position is None or lasts.position < at_least):
            return None
        if is_whole_history(lasts.messages, filter_subject):
            return sorted(lasts.messages, key=lambda raw: raw.sequence)
        earlier = await asyncio.gather(
            *(
                self._read_subject(raw.headers["Nats-Subject"], raw.sequence)
                for raw in lasts.messages
            )
        )
        if any(found is None for found in earlier):
            return None
        return sorted(
            itertools.chain(lasts.messages, *(found for found in earlier if found)),
            key=lambda raw: raw.sequence,
        )

    async def _already_stored(self, incident_id: str, after: int, msg_id: str) -> int | None:
        """The sequence of an event appended after ``after`` with this message id, if any.

        The server checks the expected sequence before its duplicate window, so a retry that
        carries its original expectation is refused as a conflict; this tells the two apart,
        on a read as recent as the leader's refusal.
        """
        for raw in await self._load_raw(incident_id, await self.last_sequence(incident_id)):
            if raw.sequence > after and raw.headers.get(wire.MSG_ID) == msg_id:
                return raw.sequence
        return None

    async def _read_subject(self, subject: str, last: int) -> list[_RawMessage] | None:
        """Every message on one literal subject before ``last``, its last in the snapshot.

        A literal subject is found through the server's subject index (its first and last
        block), unlike a wildcard. ``up_to_seq`` does not bound a ``next_by_subj`` batch, so
        what was appended after the snapshot is dropped here. None when the answering replica
        has not got ``last`` yet.
        """
        found: list[_RawMessage] = []
        next_sequence = 1
        while True:
            request = {"seq": next_sequence, "next_by_subj": subject, "batch": _BATCH}
            batch = (await self._direct_get_once(request)).messages
            found += (raw for raw in batch if raw.sequence < last)
            if batch and batch[-1].sequence >= last:
                return found
            if len(batch) < _BATCH:
                return None
            next_sequence = batch[-1].sequence + 1

    async def _direct_get_once(self, request: dict[str, Any]) -> _Answer:
        """What one replica answers to a Direct Get (a batched one ends with an EOB)."""
        try:
            found, position = await self._reader.read_once(request)
        except DirectGetError as exc:
            raise StoreReadError(str(exc)) from exc
        return _Answer(found, position)
