"""The keyed locks (``services.runtime.locks``): one holder per key at a time, and no lock kept for a key
nobody holds or waits on (the partner API's lock per referral grew with every referral touched)."""

from __future__ import annotations

import asyncio

from services.runtime.locks import KeyedLocks


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    order: list[str] = []
    release = asyncio.Event()

    async def hold(key: str, name: str, wait: bool) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if wait:
                await release.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(hold("a", "first", True))
    await asyncio.sleep(0)
    second = asyncio.create_task(hold("a", "second", False))
    other = asyncio.create_task(hold("b", "other", False))
    await other
    assert order == ["first in", "other in", "other out"]  # "second" waits for "first"; "b" does not
    assert len(locks) == 1
    release.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["first out", "second in", "second out"]
    assert len(locks) == 0


async def test_no_lock_is_kept_for_keys_not_in_use_cancelled_waiters_included() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    for key in range(1_000):
        async with locks.hold(key):
            assert len(locks) == 1
    assert len(locks) == 0
    release = asyncio.Event()

    async def hold_until_released() -> None:
        async with locks.hold(7):
            await release.wait()

    holder = asyncio.create_task(hold_until_released())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(hold_until_released())
    await asyncio.sleep(0)
    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)
    assert len(locks) == 1  # the holder's
    release.set()
    await holder
    assert len(locks) == 0
    async with locks.hold(7):  # and the key can be held again
        pass
