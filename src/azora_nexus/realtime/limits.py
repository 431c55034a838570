"""Inbound limits per socket: packets and bytes a client may send each second.

Past either, the socket is closed (a websocket with close code 1008 and the reason): a
client that floods the node costs it one second's worth, never a backlog held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

# What python-socketio's disconnect handler is told, and the websocket close reason says.
INBOUND_LIMIT = "inbound limit exceeded"


class Meter:
    """What one socket sent in the current one-second window."""

    __slots__ = ("bytes", "packets", "since")

    def __init__(self) -> None:
        self.since = 0.0
        self.packets = 0
        self.bytes = 0


@dataclass(frozen=True, slots=True)
class InboundLimits:
    packets_per_s: int
    bytes_per_s: int

    def charge(self, meter: Meter, now: float, packets: int, size: int) -> str | None:
        """Count `packets` and `size` bytes on `meter` at `now`: None while within the
        limits, else what was exceeded."""
        if now - meter.since >= 1.0:
            meter.since, meter.packets, meter.bytes = now, 0, 0
        meter.packets += packets
        meter.bytes += size
        if meter.packets > self.packets_per_s:
            return f"{INBOUND_LIMIT}: more than {self.packets_per_s} packets per second"
        if meter.bytes > self.bytes_per_s:
            return f"{INBOUND_LIMIT}: more than {self.bytes_per_s} bytes per second"
        return None
