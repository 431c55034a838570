"""Azora Nexus: the data layer and real-time event hub of the Azora platform."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azora_nexus.config import Settings
    from azora_nexus.errors import NexusError
    from azora_nexus.nexus import Nexus, open_nexus

__all__ = ["Nexus", "NexusError", "Settings", "open_nexus"]

# Resolved on first use, so `azora token` does not pay for importing the whole server stack.
_HOMES = {
    "Nexus": "azora_nexus.nexus",
    "open_nexus": "azora_nexus.nexus",
    "NexusError": "azora_nexus.errors",
    "Settings": "azora_nexus.config",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'azora_nexus' has no attribute {name!r}")
