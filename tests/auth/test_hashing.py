"""The password pools: a bounded queue that refuses at once when full, and a slot that is
held until the work itself ends, not merely until its caller stops waiting."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from azora_nexus.auth.hashing import PasswordPool, Passwords
from azora_nexus.errors import Overloaded


def blocker(gate: threading.Event) -> str:
    if not gate.wait(20):
        raise TimeoutError("the test never opened the gate")
    return "done"


def until_free(pool: PasswordPool) -> None:
    deadline = time.monotonic() + 20
    while pool.admitted and time.monotonic() < deadline:
        time.sleep(0.01)


async def test_past_workers_and_queue_a_job_is_refused_at_once() -> None:
    pool = PasswordPool("hashed", workers=1, queue=1)
    gate = threading.Event()
    try:
        running = asyncio.ensure_future(pool.run(lambda: blocker(gate)))
        waiting = asyncio.ensure_future(pool.run(lambda: blocker(gate)))
        await asyncio.sleep(0)
        assert pool.admitted == 2
        with pytest.raises(Overloaded) as refused:
            await pool.run(lambda: "never run")
        assert refused.value.retry_after_s is not None
        assert refused.value.retry_after_s > 0
        gate.set()
        assert list(await asyncio.gather(running, waiting)) == ["done", "done"]
        assert await pool.run(lambda: "admitted again") == "admitted again"
    finally:
        gate.set()
        pool.close()


async def test_a_caller_that_leaves_does_not_free_the_slot_before_the_work_ends() -> None:
    pool = PasswordPool("hashed", workers=1, queue=0)
    gate, started = threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        return blocker(gate)

    try:
        caller = asyncio.ensure_future(pool.run(work))
        assert await asyncio.to_thread(started.wait, 20)
        caller.cancel()
        with pytest.raises(asyncio.CancelledError):
            await caller
        with pytest.raises(Overloaded):  # argon2 is still running on the only thread
            await pool.run(lambda: "too early")
        gate.set()
        await asyncio.to_thread(until_free, pool)
        assert await pool.run(lambda: "now") == "now"
    finally:
        gate.set()
        pool.close()


async def test_passwords_hash_and_verify_on_their_own_pools() -> None:
    passwords = Passwords.open(workers=1, queue=2)
    try:
        hashed = await passwords.hash("correct horse")
        assert await passwords.verify(hashed, "correct horse")
        assert not await passwords.verify(hashed, "correct horse!")
        assert not await passwords.verify(None, "a password nobody has")
    finally:
        passwords.close()
