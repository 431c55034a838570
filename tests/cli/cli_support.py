"""Running the `azora` command in subprocesses: helpers shared by the CLI tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

AZORA = Path(sys.executable).with_name("azora")
URL_VARS = ("DATABASE_URL", "REDIS_URL", "MONGODB_URI", "AZORA_JWT_SECRET")


def cli_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    return env | {"AZORA_DATA_DIR": str(data_dir), "AZORA_PORT": str(port)}


def azora(
    *args: str, env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AZORA), *args], env=env, capture_output=True, text=True, timeout=timeout_s, check=False
    )


async def wait_healthy(port: int, process: subprocess.Popen[str], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, process.communicate()[1]
            try:
                response = await http.get(f"http://127.0.0.1:{port}/health")
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("azora up did not become healthy")
