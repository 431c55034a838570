"""`azora up` end to end in a subprocess: serves, refuses a twin, stops every child."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psutil
import pytest

from tests.cli.cli_support import AZORA, URL_VARS, azora, cli_env, wait_healthy
from tests.support.server import reserve_port

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture
def up_process(own_data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = reserve_port()
    process = subprocess.Popen(
        [str(AZORA), "up", "--workers", "2"],
        env=cli_env(own_data_dir, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process, port
    if process.poll() is None:
        process.kill()
    process.communicate()


async def test_up_serves_refuses_a_second_up_and_stops_every_child_on_sigterm(
    up_process: tuple[subprocess.Popen[str], int], own_data_dir: Path
) -> None:
    process, port = up_process
    await wait_healthy(port, process, timeout_s=60)
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"http://127.0.0.1:{port}/health")).json()
        metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    # The node is handed the embedded server's URL, yet its WAL archive is reported.
    assert 'azora_storage_bytes{store="wal_archive"}' in metrics
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "mongo": True,
    }
    children = psutil.Process(process.pid).children(recursive=True)
    names = " ".join(" ".join(child.cmdline()) for child in children)
    assert "postgres" in names
    assert "valkey-server" in names
    assert "secantus" in names

    twin = await asyncio.to_thread(azora, "up", env=cli_env(own_data_dir, reserve_port()))
    assert twin.returncode != 0
    assert f"is in use by azora (pid {process.pid})" in twin.stderr
    assert twin.stderr.count("\n") == 1, twin.stderr  # one line, no traceback

    status = await asyncio.to_thread(azora, "status", env=cli_env(own_data_dir, port))
    assert status.returncode == 0
    assert status.stdout.count("running") == 3
    # Per store: bytes on disk, items, the oldest item kept, the retention setting.
    rows = {line.split()[1]: line for line in status.stdout.splitlines() if line.startswith("│ ")}
    for store in ("outbox", "wal_archive", "stream", "archive"):
        assert store in rows, status.stdout
    assert "7 days" in rows["outbox"]
    assert "7 days" in rows["wal_archive"]
    assert "100000 entries" in rows["stream"]
    assert "forever" in rows["archive"]
    # The generated passwords are on no command line, in no status and in no log.
    passwords = [
        (own_data_dir / name / "azora-password").read_text().strip()
        for name in ("postgres-18", "valkey-9")
    ]
    logs = "".join(path.read_text(errors="replace") for path in own_data_dir.rglob("*.log"))
    for password in passwords:
        assert password not in names
        assert password not in status.stdout
        assert password not in logs

    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    assert process.returncode == 0
    for password in passwords:
        assert password not in stderr
    survivors = [
        child.pid
        for child in children
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert survivors == []


def test_token_is_signed_with_the_data_dir_secret(own_data_dir: Path) -> None:
    result = azora(
        "token", "--role", "admin", "--sub", "ops-1", env=cli_env(own_data_dir, reserve_port())
    )
    assert result.returncode == 0, result.stderr
    secret = (own_data_dir / "jwt-secret").read_text().strip()
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "ops-1"
    assert claims["role"] == "admin"
    assert claims["exp"] > time.time()


def test_bad_input_gets_one_line_and_a_non_zero_exit(own_data_dir: Path) -> None:
    result = azora("token", "--role", "emperor", env=cli_env(own_data_dir, reserve_port()))
    assert result.returncode != 0
    assert "emperor" in result.stderr
    serve = azora("serve", env=cli_env(own_data_dir, reserve_port()))
    assert serve.returncode == 1
    assert serve.stderr == (
        "azora: serve needs DATABASE_URL, REDIS_URL, MONGODB_URI set (or use `azora up`)\n"
    )


def first_contact_env(relative_data_dir: str | None) -> dict[str, str]:
    """The environment of a new user: no AZORA_* and no backend URLs at all."""
    blank = {"NODE_ENV", *URL_VARS}
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZORA_") and k not in blank}
    if relative_data_dir is None:
        return env  # the README's default: ./.azora and port 4001
    return env | {"AZORA_DATA_DIR": relative_data_dir, "AZORA_PORT": str(reserve_port())}


@pytest.mark.slow
@pytest.mark.parametrize("relative_data_dir", [None, "state/nexus"])
async def test_up_in_a_fresh_directory_with_default_or_relative_paths_is_healthy_and_stops_clean(
    own_data_dir: Path, relative_data_dir: str | None
) -> None:
    env = first_contact_env(relative_data_dir)
    port = int(env.get("AZORA_PORT", "4001"))
    process = subprocess.Popen(
        [str(AZORA), "up"],
        cwd=own_data_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        await wait_healthy(port, process, timeout_s=90)
        children = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
        _, stderr = process.communicate()
    assert process.returncode == 0, stderr
    data_dir = own_data_dir / (relative_data_dir or ".azora")
    assert {"postgres-18", "valkey-9", "secantus"} <= {p.name for p in data_dir.iterdir()}
    survivors = [c.pid for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert survivors == []
