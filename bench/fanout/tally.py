"""What one client process counts: deliveries per event, duplicates, and latency.

Bench events carry `payload.seq` (0, 1, ... for measured events, negative for the warm-up)
and `payload.sentUs` (the publisher's wall clock just before the POST). Every process runs
on the same machine, so receive time minus `sentUs` is the publish-to-receive latency.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

from bench.fanout.histogram import Histogram


@dataclass
class Tally:
    """Counters of one process's clients for a run of `events` measured events."""

    clients: int
    events: int
    # How many distinct clients of this process received each measured event.
    receivers: array[int] = field(init=False)
    seen: list[bytearray] = field(init=False)
    latency: Histogram = field(default_factory=Histogram)
    deliveries: int = 0
    duplicates: int = 0
    warmup: int = 0
    foreign: int = 0  # events that are not the bench's (no or unknown seq)
    last_receive_ns: int = 0

    def __post_init__(self) -> None:
        self.receivers = array("I", bytes(4 * self.events))
        self.seen = [bytearray(self.events) for _ in range(self.clients)]

    def record(self, client: int, name: str, event: Any, received_ns: int) -> None:
        """Count one delivery of `event` (an envelope named `name`) to client `client`."""
        self.last_receive_ns = received_ns
        try:
            payload = event["payload"]
            seq = payload["seq"]
            sent_us = payload["sentUs"]
        except (KeyError, TypeError):
            self.foreign += 1
            return
        if seq < 0:
            self.warmup += 1
            return
        if seq >= self.events:
            self.foreign += 1
            return
        self.deliveries += 1
        seen = self.seen[client]
        if seen[seq]:
            self.duplicates += 1
            return
        seen[seq] = 1
        self.receivers[seq] += 1
        self.latency.record(received_ns // 1000 - sent_us)

    def to_wire(self) -> dict[str, Any]:
        """The counters the parent process merges (the per-client bitmaps stay here)."""
        return {
            "receivers": self.receivers.tolist(),
            "latency": self.latency.to_wire(),
            "deliveries": self.deliveries,
            "duplicates": self.duplicates,
            "warmup": self.warmup,
            "foreign": self.foreign,
        }
