"""The stream tailer: each node reads every new event once and hands it to its listeners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from azora_nexus.events.envelope import Event, parse_event_id
from azora_nexus.events.stream import EventStream
from azora_nexus.guard import log_failure

logger = logging.getLogger(__name__)

Listener = Callable[[Sequence[Event]], Awaitable[None]]


class StreamTailer:
    """Follows the stream from where it stood at `start()`, in id order, without a gap."""

    def __init__(self, stream: EventStream, *, block_ms: int = 1000, batch_size: int = 500) -> None:
        self.stream = stream
        self.block_ms = block_ms
        self.batch_size = batch_size
        self.position = "0-0"
        self.listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        self.listeners.remove(listener)

    async def start(self) -> None:
        """Begin at the stream's current end: what comes after is live."""
        self.position = await self.stream.last_id()

    async def run(self) -> None:
        """Tail forever; survive every failure but cancellation."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log_failure(logger, "stream tailer", exc, 1.0)
                await asyncio.sleep(1.0)

    async def step(self) -> None:
        """Wait for the next events and hand them to every listener."""
        events, position = await self.stream.wait_after(
            self.position, block_ms=self.block_ms, count=self.batch_size
        )
        if position == self.position:
            await self._follow_reset()
            return
        self.position = position
        for listener in self.listeners:
            try:
                await listener(events)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("event listener failed")

    async def _follow_reset(self) -> None:
        # A stream deleted and recreated (a flushed Redis) restarts its ids below ours.
        last = await self.stream.last_id()
        if parse_event_id(last) < parse_event_id(self.position):
            logger.warning("event stream was reset; following it from the start")
            self.position = "0-0"
