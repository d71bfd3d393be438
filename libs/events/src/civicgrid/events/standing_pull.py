"""A standing pull request on a JetStream consumer: many messages per request, as they come.

nats-py (2.16) has no continuous pull (nats.go's ``Consume()``): its ``fetch(n)`` either holds a
lone message until the fetch's timeout or, asked for one, costs a request per message. A
request costs the server about as much as delivering a message, so a reader that asks per
message pays twice. This keeps one request open for up to ``credit`` messages (with an expiry
and idle heartbeats) on the consumer's inbox, hands over whatever has arrived as the next
batch, and asks for more when half the credit is used or a request ended:

- ``credit`` bounds what this client holds: messages buffered here plus messages still owed
  by open requests never exceed it. A top-up asks for the difference once that falls to half.
- A request ends by its expiry or by the server (status 408/409, with how many messages it
  still owed): that part of the credit is given back and asked for again.
- Idle heartbeats prove the open requests alive. After a reconnection, or when nothing at all
  (message, heartbeat, status) came for ``2 × heartbeat_s``, the requests are taken for lost
  (a server restart, a lost connection) and asked for again.
- On a consumer that acks nothing (``acks_nothing``), lost requests raise ``PullInterrupted``
  instead: the messages they carried are lost with them and the server counts them as done,
  so only a new consumer from the owner's own position reads them again.
- A server-side end that a new request does not mend (the consumer deleted, no responders, a
  request refused) raises ``PullInterrupted`` from ``next_batch``, for the owner to recreate
  the consumer or retry after a pause.

``close`` drains the inbox (the server sends nothing more, everything already sent has
arrived) and returns what was delivered and not taken, for the owner to give back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque

import structlog
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = structlog.get_logger("civicgrid.consumer")

# Status codes on a pull request's inbox.
HEARTBEAT = "100"
NO_MESSAGES = "404"
REQUEST_ENDED = ("408", "409")
PENDING_MESSAGES = "Nats-Pending-Messages"
# A 409 a new request mends at once; any other (the consumer deleted, a request the consumer
# refuses, too many waiting) is the owner's to act on, after a pause, not a request in a loop.
PASSING_409 = ("Leadership Change",)
# How often a wait looks whether the connection was made again meanwhile.
LOOK_AGAIN_S = 1.0


class PullInterrupted(Exception):
    """The open requests ended for a reason the owner should act on (see its message)."""


class StandingPull:
    """One consumer's inbox with a standing pull request; see the module's docstring."""

    def __init__(
        self,
        client: NatsClient,
        stream: str,
        consumer: str,
        *,
        credit: int,
        expires_s: float = 30.0,
        heartbeat_s: float = 2.5,
        api_prefix: str = "$JS.API",
        acks_nothing: bool = False,
    ) -> None:
        if credit < 1:
            raise ValueError("credit must be at least 1")
        self._nc = client
        self._next_subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._credit = credit
        self._expires_ns = int(expires_s * 1e9)
        self._heartbeat_ns = int(heartbeat_s * 1e9)
        self._heartbeat_s = heartbeat_s
        self._inbox = client.new_inbox()
        self._subscription: Subscription | None = None
        self.buffered: deque[Msg] = deque()
        # Messages the open requests still owe, as far as this client can tell.
        self._owed = 0
        self._heard_at = 0.0
        self._reconnects = client.stats["reconnects"]
        self._waiter: asyncio.Future[None] | None = None
        self._interrupted: str | None = None
        self._stopped = False
        self._acks_nothing = acks_nothing
        # Pull requests sent (for tests and metrics: the cost this module is about).
        self.requests = 0

    async def start(self) -> None:
        self._subscription = await self._nc.subscribe(self._inbox, cb=self._on_message)

    async def next_batch(self, limit: int, timeout_s: float) -> list[Msg]:
        """Up to ``limit`` messages as soon as at least one is here; [] after ``timeout_s``.

        Raises ``PullInterrupted`` when the requests ended for a reason to act on.
        """
        deadline = time.monotonic() + timeout_s
        while not self.buffered:
            if self._stopped:
                return []
            self._raise_if_interrupted()
            await self._top_up()
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, LOOK_AGAIN_S)):
                    await waiter
            self._waiter = None
            if not self.buffered and self._owed and self._requests_lost():
                log.info("pull_requests_lost", subject=self._next_subject)
                self._owed = 0
                if self._acks_nothing:
                    raise PullInterrupted("requests lost, and maybe messages with them")
        batch = [self.buffered.popleft() for _ in range(min(limit, len(self.buffered)))]
        # Asked for now, the next messages arrive while this batch is handled.
        await self._top_up()
        return batch

    def stop_waiting(self) -> None:
        """End a wait in ``next_batch`` at once, and every later one; ask for nothing more."""
        self._stopped = True
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def close(self) -> list[Msg]:
        """Stop the requests; return the messages delivered here and not taken."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            with contextlib.suppress(Exception):
                # UNSUB, then a round trip: what the server sent before arrived, and a pull
                # request without interest gets nothing more (the server checks interest).
                await subscription.drain()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        left = list(self.buffered)
        self.buffered.clear()
        self._owed = 0
        return left

    async def _top_up(self) -> None:
        held = self._owed + len(self.buffered)
        if held > self._credit // 2 or self._subscription is None or self._stopped:
            return
        if not self._nc.is_connected:
            # A request buffered while reconnecting would be sent later, on top of the next.
            raise PullInterrupted("not connected")
        wanted = self._credit - held
        request = {
            "batch": wanted,
            "expires": self._expires_ns,
            "idle_heartbeat": self._heartbeat_ns,
        }
        await self._nc.publish(self._next_subject, json.dumps(request).encode(), self._inbox)
        self.requests += 1
        if not self._owed:
            # A fresh request has its heartbeat interval to show it is alive, and only a later
            # reconnection can have lost it.
            self._heard_at = time.monotonic()
            self._reconnects = self._nc.stats["reconnects"]
        self._owed += wanted

    def _requests_lost(self) -> bool:
        reconnects = self._nc.stats["reconnects"]
        if reconnects != self._reconnects:
            # A new connection (maybe to a restarted server, which forgot the requests): ask
            # again at once, as nats.go does; a request that did survive only adds credit
            # until it expires.
            self._reconnects = reconnects
            return True
        # Neither messages nor heartbeats: the requests died with a server or a link.
        return time.monotonic() - self._heard_at > 2 * self._heartbeat_s

    def _raise_if_interrupted(self) -> None:
        reason, self._interrupted = self._interrupted, None
        if reason is not None:
            raise PullInterrupted(reason)

    async def _on_message(self, msg: Msg) -> None:
        self._heard_at = time.monotonic()
        if msg.reply:
            # A stream message (it has its ack subject, even without acks); a status has none,
            # so a header an application calls "Status" is never taken for one.
            self.buffered.append(msg)
            if self._owed:
                self._owed -= 1
            self._wake()
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == HEARTBEAT:
            return
        elif status in REQUEST_ENDED:
            self._request_ended(status, headers)
        elif status != NO_MESSAGES:
            # 503 (no responders: JetStream or the consumer not there), or an API error.
            self._owed = 0
            description = headers.get("Description", "")
            self._interrupted = f"status {status} {description}".strip()
        self._wake()

    def _request_ended(self, status: str, headers: dict[str, str]) -> None:
        description = headers.get("Description", "")
        pending = headers.get(PENDING_MESSAGES)
        if pending is not None and pending.isdigit():
            # The request's unused part: asked for again by the next top-up.
            self._owed = max(0, self._owed - int(pending))
        else:
            # How much it owed is unknown: ask afresh (at worst a little more credit, briefly).
            self._owed = 0
        if status == "409" and description not in PASSING_409:
            self._owed = 0
            self._interrupted = f"status {status} {description}"
