"""Running the `azora` command in subprocesses: helpers shared by the CLI tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.waiting import wait_healthy as wait_url_healthy

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
    """`azora up` on `port` answers /health 200 (tests/support), or has exited: its stderr."""
    await wait_url_healthy(f"http://127.0.0.1:{port}", timeout_s, process)
