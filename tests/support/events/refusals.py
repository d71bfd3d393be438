"""Telling a refused NATS request from an allowed one without waiting out its timeout."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence

from nats.errors import Error as NatsError


async def refused(
    attempt: Coroutine[object, object, object],
    published: Callable[[], Iterable[str]],
    violations: Sequence[str],
    *,
    answers: tuple[type[BaseException], ...] = (NatsError,),
    within_s: float = 10.0,
) -> bool:
    """Whether the attempt was refused: it failed with one of ``answers``, or the server reported
    a permissions violation for a subject it published to (``published``; ``violations`` are the
    connection's error messages). A publish the server refused reaches no one, so its answer
    could only be the timeout, which is not waited out; an attempt the server let through is
    still waited for, and counts as allowed if it is answered."""
    request = asyncio.ensure_future(attempt)  # in a copy of the caller's context

    def reported() -> bool:
        quoted = [f'"{subject}"'.lower() for subject in published()]
        return any(q in v.lower() for q in quoted for v in violations)

    deadline = time.monotonic() + within_s
    while not request.done() and not reported():
        assert time.monotonic() < deadline, f"{list(published())}: neither refused nor answered"
        await asyncio.wait({request}, timeout=0.01)
    if not request.done():
        request.cancel()
        with contextlib.suppress(asyncio.CancelledError, *answers):
            await request
        return True
    try:
        request.result()
    except answers:
        return True
    return False
