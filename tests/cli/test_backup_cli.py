"""`azora backup` beside a running `azora up`, then `azora restore` into a fresh data dir."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from tests.cli.cli_support import AZORA, azora, cli_env, wait_healthy
from tests.support.server import reserve_port

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


async def test_backup_of_a_running_node_restores_into_a_fresh_dir(own_data_dir: Path) -> None:
    source, port = own_data_dir / "source", reserve_port()
    node = subprocess.Popen(
        [str(AZORA), "up"],
        env=cli_env(source, port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        await wait_healthy(port, node, timeout_s=60)
        made = await asyncio.to_thread(
            azora, "backup", "--to", str(own_data_dir / "bk"), env=cli_env(source, port)
        )
    finally:
        node.send_signal(signal.SIGTERM)
        await asyncio.to_thread(node.wait, 30)
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"backup written to {own_data_dir / 'bk'}: ")
    assert "point-in-time restore from " in made.stdout

    target = cli_env(own_data_dir / "target", reserve_port())
    restored = await asyncio.to_thread(azora, "restore", str(own_data_dir / "bk"), env=target)
    assert restored.returncode == 0, restored.stderr
    assert restored.stdout.endswith("documents; ledger balanced\n")

    again = await asyncio.to_thread(azora, "restore", str(own_data_dir / "bk"), env=target)
    assert again.returncode == 1
    assert again.stderr.strip().endswith("is not empty: restore needs a fresh AZORA_DATA_DIR")
    assert again.stderr.strip().count("\n") == 0

    bad_time = await asyncio.to_thread(
        azora,
        "restore",
        str(own_data_dir / "bk"),
        "--at",
        "yesterday",
        env=cli_env(own_data_dir / "other", reserve_port()),
    )
    assert bad_time.returncode == 1
    assert bad_time.stderr == "azora: --at: 'yesterday' is not an ISO 8601 time\n"
