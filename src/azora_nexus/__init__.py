"""Azora Nexus: the data layer and real-time event hub of the Azora platform."""

from azora_nexus.config import Settings
from azora_nexus.errors import NexusError
from azora_nexus.nexus import Nexus, open_nexus

__all__ = ["Nexus", "NexusError", "Settings", "open_nexus"]
