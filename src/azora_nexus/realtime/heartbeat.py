"""Engine.IO's heartbeat for the sessions Nexus serves itself (`direct.py`): one task per node.

Engine.IO v4: the server pings every `pingInterval`; a client that has not answered within
`pingTimeout` of a ping is gone. Engine.IO keeps a task per session for that; a direct
session has none. Here one task pings every session in the same round, and `pingTimeout`
after each round closes the sessions that have said nothing since its ping. A client that
stops answering is closed `pingTimeout` after the first ping it ignores: at most
`pingInterval + pingTimeout` after the last thing it said, as the protocol specifies. The
task sleeps until the next round or check is due, so the granularity is the event loop's.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol


class Beating(Protocol):
    """A session the heartbeat keeps alive."""

    @property
    def last_seen(self) -> float:
        """When (time.monotonic) the client last sent anything."""
        ...

    def ping(self) -> None:
        """Send the client an Engine.IO ping."""
        ...

    def time_out(self) -> None:
        """Close the session: its client did not answer a ping in time."""
        ...


class Heartbeat:
    """Pings every session in `sessions` each `interval_s`; closes those that have not been
    heard from `timeout_s` after a ping."""

    def __init__(self, interval_s: float, timeout_s: float) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.sessions: dict[str, Beating] = {}

    async def run(self) -> None:
        pinged: deque[float] = deque()  # rounds whose answers are still awaited
        next_round = time.monotonic() + self.interval_s
        while True:
            due = min(next_round, pinged[0] + self.timeout_s) if pinged else next_round
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            while pinged and now >= pinged[0] + self.timeout_s:
                self.expire(pinged.popleft())
            if now >= next_round:
                self.ping_all()
                pinged.append(now)
                next_round = now + self.interval_s

    def ping_all(self) -> None:
        for session in list(self.sessions.values()):
            session.ping()

    def expire(self, pinged_at: float) -> None:
        """Close the sessions silent since the round pinged at `pinged_at`."""
        for session in list(self.sessions.values()):
            if session.last_seen < pinged_at:
                session.time_out()
