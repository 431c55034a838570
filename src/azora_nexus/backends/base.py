"""The small protocol every embedded backend keeps: start it, ask its URL, stop it."""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    """A server Nexus can run as its own child process."""

    name: str

    async def start(self) -> str:
        """Start the server (or find it ready) and return its client URL."""
        ...

    @property
    def url(self) -> str:
        """The client URL; valid after `start`."""
        ...

    async def stop(self) -> None:
        """Stop the server and wait for it to exit; a no-op when it is not running."""
        ...
