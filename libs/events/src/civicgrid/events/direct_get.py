"""Batched Direct Gets (ADR-31) on a stream: the reads that decide, from any replica that has
caught up with what the reader knows exists (intake's duplicate claims, the event store's
history reads).

A batched or multi-last Direct Get answers with several messages and an end-of-batch status,
so nats-py's request() does not fit; one wildcard inbox per connection serves every read,
routed by token (a subscription per read would cost a SUB and an UNSUB each time).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

_UP_TO_SEQUENCE = "Nats-UpTo-Sequence"


T = TypeVar("T")


async def until_caught_up(read: Callable[[], Awaitable[T | None]]) -> T | None:
    """``read()`` again while it answers None (the replica that answered is behind), pausing
    10 ms doubling to 250 ms, ~3 s in all; None if no answer came from a replica caught up.

    One schedule for every read that must reach a sequence: a follower catching up after a
    leader change takes the same time whoever is asking."""
    pauses = itertools.chain((0.01, 0.02, 0.04, 0.08, 0.16), itertools.repeat(0.25, 11))
    while True:
        answer = await read()
        if answer is not None:
            return answer
        pause = next(pauses, None)
        if pause is None:
            return None
        await asyncio.sleep(pause)


class DirectGetError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class RawMessage:
    sequence: int
    headers: dict[str, str]
    data: bytes


def reaches(found: list[RawMessage], position: int | None, at_least: int) -> bool:
    """Whether an answer is a snapshot of the stream at ``at_least`` or later: it says so, or
    holds a message that far on. ("Nothing matches", when ``at_least`` is among what was asked
    for, comes from a replica that has not got there yet.)"""
    if not at_least:
        return True
    if position is not None and position >= at_least:
        return True
    return any(raw.sequence >= at_least for raw in found)


class DirectReader:
    """Direct Gets on one stream over one connection."""

    def __init__(self, nc: NatsClient, stream: str, *, timeout: float = 5.0) -> None:
        self._nc = nc
        self._stream = stream
        self._timeout = timeout
        self._router: _ReplyRouter | None = None

    async def get(self, request: dict[str, Any], at_least: int = 0) -> list[RawMessage]:
        """The messages a Direct Get request answers, from a replica that has applied
        ``at_least``: a stream sequence the reader knows exists among the messages asked for
        (its own write). A replica behind it is asked again."""

        async def read() -> list[RawMessage] | None:
            found, position = await self.read_once(request)
            return found if reaches(found, position, at_least) else None

        found = await until_caught_up(read)
        if found is None:
            raise DirectGetError(f"no replica has reached sequence {at_least} for {request}")
        return found

    async def read_once(self, request: dict[str, Any]) -> tuple[list[RawMessage], int | None]:
        """One answer to a batched Direct Get: its messages and the answering replica's last
        stream sequence (``Nats-UpTo-Sequence`` ending a batch, read under the stream's lock;
        None when nothing matched). nats-server 2.15 has no ``min_last_seq`` to ask for it."""
        replies = await self._replies()
        token, queue = replies.open()
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{self._stream}",
                json.dumps(request).encode(),
                reply=replies.subject(token),
            )
            received: list[RawMessage] = []
            while True:
                msg = await asyncio.wait_for(queue.get(), timeout=self._timeout)
                headers = dict(msg.headers or {})
                status = headers.get("Status")
                if status == "404":  # nothing matches
                    return received, None
                if status == "204":  # the end of this batch
                    position = headers.get(_UP_TO_SEQUENCE)
                    return received, None if position is None else int(position)
                if status is not None:
                    raise DirectGetError(
                        f"direct get {request}: {status} {headers.get('Description')}"
                    )
                received.append(RawMessage(int(headers["Nats-Sequence"]), headers, msg.data))
                if "batch" not in request and "multi_last" not in request:
                    return received, None
        finally:
            replies.close(token)

    async def _replies(self) -> _ReplyRouter:
        if self._router is None:
            router = _ReplyRouter(self._nc.new_inbox())
            await router.subscribe(self._nc)
            self._router = router
        return self._router


class _ReplyRouter:
    """One wildcard inbox for every read, routed by token."""

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
