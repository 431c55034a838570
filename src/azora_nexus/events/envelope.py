"""The event envelope of CONTRACT.md: what every event looks like on every wire.

Inside Nexus an event is a frozen `Event`; on the wire it is the JSON envelope
`{id, type, payload, source, timestamp, userId?}` with amounts as decimal strings and
`timestamp` in milliseconds. The `id` is the Redis stream entry id (`<ms>-<seq>`), which
orders events.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from azora_nexus.errors import Invalid

Payload = dict[str, Any]

# ASCII digits only, matched whole (`$` would let a trailing newline through).
_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
_U64 = 2**64 - 1
# The archive keeps `ms` as a BSON int64.
_I64 = 2**63 - 1


def now_ms() -> int:
    """Milliseconds since the epoch, as every envelope's `timestamp` carries them."""
    return time.time_ns() // 1_000_000


def parse_event_id(event_id: str) -> tuple[int, int]:
    """`"<ms>-<seq>"` as a sortable pair; Invalid for anything else."""
    match = _ID.fullmatch(event_id)
    if match is None:
        raise Invalid(f"bad event id {event_id!r}: expected <ms>-<seq>")
    ms, seq = int(match[1]), int(match[2])
    if ms > _I64 or seq > _U64:
        raise Invalid(f"bad event id {event_id!r}: out of range")
    return ms, seq


def previous_id(event_id: str) -> str:
    """The largest id strictly before `event_id` (so an inclusive range can start after it)."""
    ms, seq = parse_event_id(event_id)
    if seq > 0:
        return f"{ms}-{seq - 1}"
    if ms == 0:
        return "0-0"
    return f"{ms - 1}-{_U64}"


# Keys that hold money: their values must be decimal strings (or Decimals), never numbers.
_MONEY_KEY = re.compile(r"amount|balance|budget|^bid$", re.IGNORECASE)


def _plain(key: str, value: Any) -> Any:
    """JSON-ready: Decimals become strings; a number under a money key is refused."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(key, v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool) and _MONEY_KEY.search(key):
        raise Invalid(f"{key!r} is an amount: send it as a decimal string")
    return value


def plain_payload(payload: Payload) -> Payload:
    """A copy of `payload` that JSON can carry exactly: Decimal amounts become strings."""
    return {str(k): _plain(str(k), v) for k, v in payload.items()}


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event before the bus has given it an id."""

    type: str
    payload: Payload
    source: str
    timestamp_ms: int
    user_id: str | None = None

    def to_fields(self) -> dict[str, Any]:
        """The body stored in a stream entry (everything but the id)."""
        body: dict[str, Any] = {
            "type": self.type,
            "payload": self.payload,
            "source": self.source,
            "timestamp": self.timestamp_ms,
        }
        if self.user_id is not None:
            body["userId"] = self.user_id
        return body

    def encode(self) -> bytes:
        return orjson.dumps(self.to_fields())

    def with_id(self, event_id: str) -> Event:
        return Event(
            id=event_id,
            type=self.type,
            payload=self.payload,
            source=self.source,
            timestamp_ms=self.timestamp_ms,
            user_id=self.user_id,
        )


@dataclass(frozen=True, slots=True)
class Event:
    """One event on the bus, with the id that orders it."""

    id: str
    type: str
    payload: Payload
    source: str
    timestamp_ms: int
    user_id: str | None = None

    @property
    def order(self) -> tuple[int, int]:
        return parse_event_id(self.id)

    def to_wire(self) -> dict[str, Any]:
        """The CONTRACT.md envelope."""
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "payload": self.payload,
            "source": self.source,
            "timestamp": self.timestamp_ms,
        }
        if self.user_id is not None:
            body["userId"] = self.user_id
        return body

    @classmethod
    def from_wire(cls, body: dict[str, Any]) -> Event:
        """The event an envelope (or a stored body plus its `id`) describes."""
        user_id = body.get("userId")
        return cls(
            id=str(body["id"]),
            type=str(body["type"]),
            payload=dict(body["payload"]),
            source=str(body["source"]),
            timestamp_ms=int(body["timestamp"]),
            user_id=None if user_id is None else str(user_id),
        )

    @classmethod
    def decode(cls, event_id: str, encoded: bytes | str) -> Event:
        """The event stored under `event_id` as `NewEvent.encode()` wrote it."""
        body = orjson.loads(encoded)
        body["id"] = event_id
        return cls.from_wire(body)
