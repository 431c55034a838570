"""Embedded servers for PostgreSQL, Redis and the MongoDB role, and the one place that picks."""

from azora_nexus.backends.launcher import BackendUrls, backend_status, start_backends

__all__ = ["BackendUrls", "backend_status", "start_backends"]
