"""`azora seed` in a subprocess: with URLs set, beside a running `azora up`, and refusing
bad numbers with one line."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token, resolve_secret
from azora_nexus.config import Settings
from tests.seed.seed_support import ledger_problems, table_counts
from tests.support.server import reserve_port
from tests.support.waiting import wait_healthy

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow

AZORA = Path(sys.executable).with_name("azora")
URL_VARS = ("DATABASE_URL", "REDIS_URL", "MONGODB_URI", "AZORA_JWT_SECRET")
SIZE = ("--users", "8", "--courses", "2", "--jobs", "3", "--transfers", "6")


def plain_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in URL_VARS}
    return env | {"AZORA_DATA_DIR": str(data_dir), **extra}


def azora(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AZORA), *args], env=env, capture_output=True, text=True, timeout=110, check=False
    )


async def test_seed_with_urls_prints_one_summary_line_and_a_rerun_adds_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    assert settings.redis_url is not None
    assert settings.mongodb_uri is not None
    env = plain_env(
        tmp_path / "data",
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        MONGODB_URI=settings.mongodb_uri,
    )

    first = await asyncio.to_thread(azora, "seed", *SIZE, env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("seeded in ")
    assert first.stdout.count("\n") == 1
    for part in ("8 users (8 new)", "3 jobs (3 new)", "6 transfers (6 new)", "16 mining rewards"):
        assert part in first.stdout
    assert first.stdout.endswith("demo sign-in: user00000@demo.azora.dev / azora-demo-password\n")
    for phase in ("users and profiles", "wallets funded by mining", "transfers"):
        assert phase in first.stderr  # the bars go to stderr, the summary alone to stdout
    counts = await table_counts(settings.database_url)
    assert (counts["users"], counts["jobs"], counts["wallets"]) == (8, 3, 16)

    second = await asyncio.to_thread(azora, "seed", *SIZE, env=env)

    assert second.returncode == 0, second.stderr
    assert second.stdout.count("(0 new)") == 10
    assert await table_counts(settings.database_url) == counts
    assert await ledger_problems(settings.database_url) == {}


@pytest.fixture
def running_node(own_data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = reserve_port()
    node = subprocess.Popen(
        [str(AZORA), "up"],
        env=plain_env(own_data_dir, AZORA_PORT=str(port)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    yield node, port
    if node.poll() is None:
        node.send_signal(signal.SIGTERM)
        try:
            node.wait(30)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait()


async def get_json(
    http: httpx.AsyncClient, url: str, params: dict[str, str | int], headers: dict[str, str]
) -> object:
    response = await http.get(url, params=params, headers=headers)
    response.raise_for_status()
    return response.json()


async def test_seed_writes_into_a_running_node_whose_relay_publishes_the_events(
    running_node: tuple[subprocess.Popen[str], int], own_data_dir: Path
) -> None:
    node, port = running_node
    token = issue_token(
        resolve_secret(Settings(AZORA_DATA_DIR=own_data_dir)), sub="ops", role=Role.ADMIN
    )
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=10) as http:
        await wait_healthy(f"http://127.0.0.1:{port}", 60, node)

        seeded = await asyncio.to_thread(azora, "seed", *SIZE, env=plain_env(own_data_dir))

        assert seeded.returncode == 0, seeded.stderr
        assert "8 users (8 new)" in seeded.stdout
        # The seed attached to the node's servers: the node's relay puts its outbox on the
        # stream, and its API serves what the seed wrote.
        deadline = time.monotonic() + 30
        published: list[object] = []
        while time.monotonic() < deadline and len(published) < 12:
            body = await get_json(
                http,
                f"http://127.0.0.1:{port}/events",
                params={"type": "finance.transaction.completed", "limit": 100},
                headers=headers,
            )
            assert isinstance(body, dict)
            published = body["events"]
            await asyncio.sleep(0.2)
        assert len(published) == 12  # 6 transfers, each told to both parties
    assert node.poll() is None  # the node kept running: the seed did not take its data dir


def test_negative_numbers_get_one_line_and_exit_1(tmp_path: Path) -> None:
    env = plain_env(tmp_path / "data")

    negative = azora("seed", "--users", "5", "--transfers", "-2", env=env)
    too_few = azora("seed", "--users", "1", "--jobs", "3", "--transfers", "0", env=env)

    assert (negative.returncode, negative.stdout) == (1, "")
    assert negative.stderr == "azora: --transfers must be 0 or more, not -2\n"
    assert (too_few.returncode, too_few.stderr) == (
        1,
        "azora: --jobs and --transfers need at least 2 users\n",
    )
    assert not (tmp_path / "data").exists()  # refused before any server started
