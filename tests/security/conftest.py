"""Fixtures for the security tests, defined (and type-checked) in `served`."""

from __future__ import annotations

from tests.security.served import http, served

__all__ = ["http", "served"]
