"""How a cached value is stored: `<soft deadline ms>:<JSON>` (orjson).

The soft deadline (0 = none) sits in front of the JSON so the Lua lookup can tell a value
that should be refreshed without decoding it. Decimals are written as strings, never as
floats, so money survives the round trip exactly as the API puts it on the wire.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def _default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: object) -> bytes:
    """`value` as JSON, Decimals as strings; raises TypeError for what JSON cannot hold."""
    return orjson.dumps(value, default=_default)


def encode(value: object, soft_deadline_ms: int = 0) -> bytes:
    """The stored form of `value`; raises TypeError for what JSON cannot hold."""
    return b"%d:" % soft_deadline_ms + dumps(value)


def body(stored: bytes) -> bytes:
    """The JSON part of a stored value, as it was written."""
    return stored.partition(b":")[2]


def decode(stored: bytes) -> Any:
    """The value `encode` stored (JSON types: dict, list, str, int, float, bool, None)."""
    return orjson.loads(body(stored))


def soft_deadline_ms(stored: bytes) -> int:
    head, _, _ = stored.partition(b":")
    return int(head)
