"""Password hashing on threads of its own, behind bounded queues.

argon2id costs tens of milliseconds of CPU and 64 MiB per hash. Run on the shared default
executor, a flood of sign-ups queued every sign-in behind it (200 registrations made a
real user's sign-in take 27 s) and held a hash's memory per queued request. So sign-ups
(`hashing`) and sign-ins (`verifying`) each get a pool of their own, a few threads wide,
and a queue of bounded length in front: past it a request is refused at once with
Overloaded (503 with Retry-After) instead of waiting, and a sign-up flood never delays a
sign-in's turn.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from azora_nexus.auth.passwords import hash_now, verify_now
from azora_nexus.errors import Overloaded

T = TypeVar("T")


def default_workers() -> int:
    """Half the CPUs, at least one: the two pools together may take every core, no more."""
    return max(1, (os.cpu_count() or 2) // 2)


class PasswordPool:
    """`workers` threads for argon2, and room for `queue` more jobs waiting their turn."""

    def __init__(self, name: str, *, workers: int, queue: int) -> None:
        self.name = name
        self.workers = workers
        self.capacity = workers + queue
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix=f"argon2-{name}")
        self._lock = threading.Lock()
        self._admitted = 0
        self._job_s = 0.1  # a running mean of one job's time, for Retry-After

    @property
    def admitted(self) -> int:
        """Jobs running or waiting."""
        return self._admitted

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.capacity:
                wait_s = self._admitted / self.workers * self._job_s
                raise Overloaded(
                    f"too many passwords being {self.name}; try again shortly",
                    retry_after_s=wait_s,
                )
            self._admitted += 1

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self._admitted -= 1

    def _timed(self, work: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return work()
        finally:
            elapsed_s = time.perf_counter() - started
            with self._lock:
                self._job_s = 0.8 * self._job_s + 0.2 * elapsed_s

    async def run(self, work: Callable[[], T]) -> T:
        """`work()` on this pool's threads; Overloaded (503) at once when the queue is full."""
        self._admit()
        future = self._executor.submit(self._timed, work)
        # Released when the job ends, not when its caller stops waiting (a client that
        # leaves does not stop argon2): the bound holds for the threads' real work.
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Drop queued jobs; running ones finish on their own."""
        self._executor.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class Passwords:
    """A node's password work: sign-ups hash on one pool, sign-ins verify on another."""

    hashing: PasswordPool
    verifying: PasswordPool

    @classmethod
    def open(cls, *, workers: int, queue: int) -> Passwords:
        """Both pools, `workers` threads (0: `default_workers()`) and `queue` waiting each."""
        width = workers or default_workers()
        return cls(
            hashing=PasswordPool("hashed", workers=width, queue=queue),
            verifying=PasswordPool("verified", workers=width, queue=queue),
        )

    async def hash(self, password: str) -> str:
        """An argon2id hash of `password`, with its own random salt; Overloaded when busy."""
        return await self.hashing.run(lambda: hash_now(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches (False, after as much work, for None); Overloaded
        when busy."""
        return await self.verifying.run(lambda: verify_now(password_hash, password))

    def close(self) -> None:
        self.hashing.close()
        self.verifying.close()
