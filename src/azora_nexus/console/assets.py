"""The console's static files, read from the installed package and kept in memory."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable

PAGE = "index.html"
ICON = "favicon.svg"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".LICENSE": "text/plain; charset=utf-8",
}


@dataclass(frozen=True)
class Asset:
    """One file of the page: its bytes, media type and a validator for conditional requests."""

    body: bytes
    media_type: str
    etag: str


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Traversable]:
    found: dict[str, Traversable] = {}
    for entry in folder.iterdir():
        name = f"{prefix}{entry.name}"
        if entry.is_dir():
            found |= _walk(entry, f"{name}/")
        elif any(name.endswith(suffix) for suffix in MEDIA_TYPES):
            found[name] = entry
    return found


@cache
def assets() -> dict[str, Asset]:
    """Every servable file by its path under `static/`; nothing outside that folder."""
    # Loaded once: a fixed set of small files, so a request never touches the disk and a
    # path from the URL is only ever a key of this dict (no traversal possible).
    found = _walk(files("azora_nexus.console").joinpath("static"))
    loaded: dict[str, Asset] = {}
    for name, entry in found.items():
        body = entry.read_bytes()
        suffix = next(s for s in MEDIA_TYPES if name.endswith(s))
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        loaded[name] = Asset(body=body, media_type=MEDIA_TYPES[suffix], etag=etag)
    return loaded


def find_asset(name: str) -> Asset | None:
    """The file at `name` under `static/`, or None when there is none."""
    return assets().get(name)
