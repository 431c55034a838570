"""Fixtures for domain route tests, defined (and type-checked) in `domain_helpers`.

The app runs in process (`client`); setup and checks go straight to the test's database.
"""

from __future__ import annotations

from tests.domain.domain_helpers import domain_db, headers, make_user, read_events, side_cache

__all__ = ["domain_db", "headers", "make_user", "read_events", "side_cache"]
