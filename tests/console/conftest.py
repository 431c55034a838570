"""Fixtures for the console tests, defined (and type-checked) in `console_helpers`."""

from __future__ import annotations

from tests.console.console_helpers import base_url, browser, http, tab

__all__ = ["base_url", "browser", "http", "tab"]
