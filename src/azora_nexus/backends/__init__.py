"""Embedded servers for PostgreSQL, Redis and the MongoDB role, and the one place that picks."""

from azora_nexus.backends.launcher import (
    BackendUrls,
    attach_backends,
    backend_status,
    start_backends,
)

__all__ = ["BackendUrls", "attach_backends", "backend_status", "start_backends"]
