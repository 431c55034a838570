"""When the tokens of a node's live sockets expire: one timer for the node, not one per socket.

A token's `exp` is a whole second, so sockets are kept in buckets by that second: adding,
moving (a refresh) and removing a socket cost a dict and set operation. A heap of the
buckets' seconds says which is due first, and one `call_later` handle is armed for it, moved
only when an earlier second arrives. No task and no timer per socket; a bucket of one socket
is its sid itself (a set is ~200 bytes), so a socket costs about 100-150 bytes here whether
its second is shared or not.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time
from collections.abc import Callable


class Expiries:
    """Sockets by the second their token expires; `on_expired(sids)` is called once that
    second has passed, from the event loop, with every socket of the buckets then due."""

    def __init__(self, on_expired: Callable[[list[str]], None]) -> None:
        self.on_expired = on_expired
        # A sid, a set of sids, or None: a second still in the heap whose sockets all left
        # (kept so that a socket added to it again does not push the second a second time).
        self.buckets: dict[int, str | set[str] | None] = {}
        self.seconds: list[int] = []  # heap of the buckets' seconds
        self.timer: asyncio.TimerHandle | None = None
        self.armed_for = math.inf

    def __len__(self) -> int:
        return sum(1 if isinstance(b, str) else len(b) for b in self.buckets.values() if b)

    def add(self, sid: str, expires_at_s: int) -> None:
        """Watch `sid` until `expires_at_s` (seconds since the epoch)."""
        if expires_at_s not in self.buckets:
            heapq.heappush(self.seconds, expires_at_s)
        bucket = self.buckets.get(expires_at_s)
        if bucket is None:
            self.buckets[expires_at_s] = sid
        elif isinstance(bucket, str):
            self.buckets[expires_at_s] = {bucket, sid}
        else:
            bucket.add(sid)
        if expires_at_s < self.armed_for:
            self._arm()

    def discard(self, sid: str, expires_at_s: int) -> None:
        """Stop watching `sid` (it left, or its token was replaced)."""
        bucket = self.buckets.get(expires_at_s)
        if bucket == sid:
            self.buckets[expires_at_s] = None
        elif isinstance(bucket, set):
            bucket.discard(sid)
            if not bucket:
                self.buckets[expires_at_s] = None

    def close(self) -> None:
        """Watch nothing more (the node stops serving)."""
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.armed_for = None, math.inf
        self.buckets.clear()
        self.seconds.clear()

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.timer, self.armed_for = None, math.inf
        if self.seconds:
            self.armed_for = due = self.seconds[0]
            # The wall clock decides (a token's exp is wall time); `_due` re-arms if early.
            delay_s = max(0.0, due - time.time())
            self.timer = asyncio.get_running_loop().call_later(delay_s, self._due)

    def _due(self) -> None:
        self.timer, self.armed_for = None, math.inf
        now = time.time()
        expired: list[str] = []
        while self.seconds and self.seconds[0] <= now:
            bucket = self.buckets.pop(heapq.heappop(self.seconds), None)
            if isinstance(bucket, str):
                expired.append(bucket)
            elif bucket:
                expired.extend(bucket)
        self._arm()
        if expired:
            self.on_expired(expired)
