"""Keeps the messages of a batch from being redelivered while the batch is being worked on.

The server starts a message's ack-wait clock when it delivers it, and a batch is delivered
whole: a slow handler, or a quick one behind it in the same incident, would otherwise be
redelivered (to this replica or another) while it still runs. ``in_progress`` restarts the
clock; beating at a third of the ack wait leaves room for two lost beats.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from types import TracebackType

import structlog
from nats.aio.msg import Msg

log = structlog.get_logger("civicgrid.consumer")


class Heartbeat:
    def __init__(self, messages: Sequence[Msg], interval_s: float) -> None:
        self._messages = messages
        self._interval_s = interval_s
        # A timer until the first beat, a task only then: most batches are done long before,
        # and a task made and cancelled per batch was a noticeable part of a small batch's cost.
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Heartbeat:
        self._timer = asyncio.get_running_loop().call_later(self._interval_s, self._first_beat)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _first_beat(self) -> None:
        self._task = asyncio.create_task(self._beat(), name="heartbeat")

    async def _beat(self) -> None:
        while True:
            # Acked, NAKed or terminated messages are settled; only the rest need more time.
            for msg in [m for m in self._messages if not m.is_acked]:
                try:
                    await msg.in_progress()
                except Exception as exc:
                    # The connection is gone: the server will redeliver; nothing to keep alive.
                    log.warning("heartbeat_failed", subject=msg.subject, error=repr(exc))
            await asyncio.sleep(self._interval_s)
