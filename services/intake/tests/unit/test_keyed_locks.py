"""One holder at a time per key, others free, and nothing kept for a key once released."""

from __future__ import annotations

import asyncio

from civicgrid.intake.keyed_locks import KeyedLocks


async def test_one_holder_per_key_and_no_lock_left_behind() -> None:
    locks = KeyedLocks()
    inside: dict[str, int] = {"a": 0, "b": 0}
    most: dict[str, int] = {"a": 0, "b": 0}

    async def hold(key: str) -> None:
        async with locks.holding(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0)
            inside[key] -= 1

    async with locks.holding("b"):
        # "b" is held here, yet "a" goes through.
        await asyncio.wait_for(asyncio.gather(*(hold("a") for _ in range(5))), timeout=5)
        assert len(locks) == 1
    await asyncio.gather(*(hold(key) for key in "abab"))
    assert most == {"a": 1, "b": 1}
    assert len(locks) == 0
