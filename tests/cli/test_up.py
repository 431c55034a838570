"""`azora up` end to end in a subprocess: serves, refuses a twin, stops every child."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psutil
import pytest
from cli_support import AZORA, azora, cli_env, wait_healthy

from azora_nexus.backends.process import free_port


@pytest.fixture
def up_process(own_data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
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
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "postgres": True,
        "redis": True,
        "mongo": True,
    }
    children = psutil.Process(process.pid).children(recursive=True)
    names = " ".join(" ".join(child.cmdline()) for child in children)
    assert "postgres" in names
    assert "redis-server" in names
    assert "secantus" in names

    twin = await asyncio.to_thread(azora, "up", env=cli_env(own_data_dir, free_port()))
    assert twin.returncode != 0
    assert f"is in use by azora (pid {process.pid})" in twin.stderr
    assert twin.stderr.count("\n") == 1, twin.stderr  # one line, no traceback

    status = await asyncio.to_thread(azora, "status", env=cli_env(own_data_dir, port))
    assert status.returncode == 0
    assert status.stdout.count("running") == 3

    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 30)
    assert process.returncode == 0
    survivors = [
        child.pid
        for child in children
        if child.is_running() and child.status() != psutil.STATUS_ZOMBIE
    ]
    assert survivors == []


def test_token_is_signed_with_the_data_dir_secret(own_data_dir: Path) -> None:
    result = azora(
        "token", "--role", "admin", "--sub", "ops-1", env=cli_env(own_data_dir, free_port())
    )
    assert result.returncode == 0, result.stderr
    secret = (own_data_dir / "jwt-secret").read_text().strip()
    claims = jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])
    assert claims["sub"] == "ops-1"
    assert claims["role"] == "admin"
    assert claims["exp"] > time.time()


def test_bad_input_gets_one_line_and_a_non_zero_exit(own_data_dir: Path) -> None:
    result = azora("token", "--role", "emperor", env=cli_env(own_data_dir, free_port()))
    assert result.returncode != 0
    assert "emperor" in result.stderr
    serve = azora("serve", env=cli_env(own_data_dir, free_port()))
    assert serve.returncode == 1
    assert serve.stderr == (
        "azora: serve needs DATABASE_URL, REDIS_URL, MONGODB_URI set (or use `azora up`)\n"
    )
