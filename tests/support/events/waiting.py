"""Waiting for a condition with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

PATIENCE = float(os.environ.get("CIVICGRID_TEST_PATIENCE", "2"))
"""Every deadline here is stretched by this factor. A deadline only bounds how long a failing
test hangs; it is never a performance claim (those are in ``make bench``, and promptness tests
keep their own clocks). The suite runs on two workers on two cores, where a process start can
take several times its quiet-machine time."""


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    within_s: float = 10.0,
    interval_s: float = 0.02,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy; fail loudly at the deadline."""
    within_s *= PATIENCE
    deadline = time.monotonic() + within_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = await probe()
        if last:
            return last
        await asyncio.sleep(interval_s)
    raise AssertionError(f"{what} not reached within {within_s}s (last: {last!r})")
