"""Column types shared by every model: money, closed sets of values, timestamps."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sqlalchemy import DateTime, Enum, Numeric, Uuid, func
from sqlalchemy.orm import Mapped, mapped_column

# 38 digits, 18 after the point: enough for ETH's 18 decimals and any realistic total.
MONEY = Numeric(38, 18, asdecimal=True)

# Every timestamp is absolute; the database stores UTC.
TIMESTAMP = DateTime(timezone=True)

# One width for every closed set, so adding a longer value never alters a column's type.
ENUM_LENGTH = 32


def text_enum(values: type[StrEnum], name: str) -> Enum:
    """A VARCHAR holding one of `values` (by value), guarded by a CHECK constraint `name`.

    A CHECK constraint rather than a PostgreSQL enum type: adding a value is a plain
    constraint swap inside a transaction, and downgrades have no types to drop.
    """
    return Enum(
        values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


def uuid_pk() -> Mapped[uuid.UUID]:
    """A UUID primary key, made in Python (known before flush) or else by PostgreSQL."""
    return mapped_column(
        Uuid, primary_key=True, default=uuid.uuid4, server_default=func.gen_random_uuid()
    )


# Mapper options for tables whose `updated_at` the database sets on UPDATE: fetch it back
# with RETURNING, so reading it after a flush needs no lazy load (impossible under asyncio).
# INSERTs fetch server defaults that way already (SQLAlchemy's eager_defaults="auto").
REFRESH_ON_UPDATE: Mapping[str, Any] = MappingProxyType({"eager_defaults": True})
