"""Waiting for something to become true, never for a fixed time."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable

import httpx


async def eventually(
    check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0, every_s: float = 0.05
) -> None:
    """Wait until `check()` holds; TimeoutError after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            if await check():
                return
            await asyncio.sleep(every_s)


async def wait_healthy(
    url: str,
    timeout_s: float = 30.0,
    process: subprocess.Popen[str] | asyncio.subprocess.Process | None = None,
) -> None:
    """Wait until `GET {url}/health` answers 200; fail at once if `process` has exited."""

    async def healthy() -> bool:
        if isinstance(process, subprocess.Popen) and process.poll() is not None:
            _, stderr = process.communicate()
            raise AssertionError(f"the node exited with {process.returncode}: {stderr}")
        if isinstance(process, asyncio.subprocess.Process) and process.returncode is not None:
            raise AssertionError(f"the node exited with {process.returncode}")
        try:
            return (await http.get(f"{url}/health")).status_code == 200
        except httpx.TransportError:
            return False

    async with httpx.AsyncClient(timeout=2) as http:
        try:
            await eventually(healthy, timeout_s, every_s=0.1)
        except TimeoutError:
            raise AssertionError(f"{url} did not become healthy in {timeout_s} s") from None
