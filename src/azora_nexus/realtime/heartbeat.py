"""Engine.IO's heartbeat for the sessions Nexus serves itself (`direct.py`): one task per node.

Engine.IO pings each session it serves from a task of that session; a direct session has
none, so one task pings them all.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Beating(Protocol):
    """A session the heartbeat keeps alive."""

    def keep_alive(self, silent_since: float) -> None:
        """Ping the client; close the session if it has said nothing since `silent_since`."""
        ...


class Heartbeat:
    """Pings every session in `sessions` each `interval_s`; closes those silent for longer
    than an interval and a timeout (Engine.IO v4's rule)."""

    def __init__(self, interval_s: float, timeout_s: float) -> None:
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.sessions: dict[str, Beating] = {}

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            silent_since = time.monotonic() - self.interval_s - self.timeout_s
            for session in list(self.sessions.values()):
                session.keep_alive(silent_since)
