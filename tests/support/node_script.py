"""A Node.js script driven from a test: commands go to its stdin, and every line it prints is
a JSON record (`{"kind": ...}`). tests/js/ holds the scripts."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "tests" / "js"


async def run_script(name: str, *args: str) -> asyncio.subprocess.Process:
    """Start tests/js/`name` under Node with `args`, its stdin and stdout piped."""
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the JavaScript client tests"
    assert (ROOT / "node_modules" / "socket.io-client").is_dir(), "run `npm ci` first"
    return await asyncio.create_subprocess_exec(
        *(node, str(SCRIPTS / name), *args),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
        limit=64 * 1024 * 1024,  # a report may be one long line
    )


class NodeScript:
    """The records a running script has printed, read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.records: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.records.append(json.loads(line))
            self.changed.set()

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["kind"] == kind]

    async def wait_for(
        self, kind: str, count: int = 1, timeout_s: float = 10.0
    ) -> list[dict[str, Any]]:
        """Wait until `count` records of `kind` have arrived; all of them."""
        async with asyncio.timeout(timeout_s):
            while True:
                found = self.of_kind(kind)
                if len(found) >= count:
                    return found
                assert not self.reader.done(), "the Node script exited"
                self.changed.clear()
                await self.changed.wait()

    async def write(self, line: str) -> None:
        """Send the script one line (a command)."""
        assert self.process.stdin is not None
        self.process.stdin.write(line.encode() + b"\n")
        await self.process.stdin.drain()
