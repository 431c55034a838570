"""Every table Nexus has, imported in one place so Alembic and the tests see them all."""

from __future__ import annotations

from azora_nexus.database.base import Base

metadata = Base.metadata

__all__ = ["metadata"]
