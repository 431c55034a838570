"""`azora serve` with PostgreSQL or Redis not answering stops with one line and exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_support import azora, cli_env

NOBODY = "127.0.0.1:1"  # nothing listens on port 1: every connect is refused at once


@pytest.mark.parametrize("workers", ["1", "2"])
@pytest.mark.parametrize("down", ["postgres", "redis"])
def test_serve_with_a_backend_down_says_so_in_one_line(
    tmp_path: Path, database_url: str, redis_url: str, down: str, workers: str
) -> None:
    """Before: uvicorn's traceback from every process (155 lines for one node, 309 for
    two workers), exit 3 or 1."""
    env = cli_env(tmp_path / "data", 4099) | {
        "DATABASE_URL": f"postgresql://postgres:x@{NOBODY}/azora"
        if down == "postgres"
        else database_url,
        "REDIS_URL": f"redis://{NOBODY}/0" if down == "redis" else redis_url,
        "MONGODB_URI": f"mongodb://{NOBODY}/azora",
    }
    done = azora("serve", "--workers", workers, env=env, timeout_s=60)
    output = (done.stdout + done.stderr).strip().splitlines()
    assert done.returncode == 1, output
    assert len(output) == 1, output
    assert output[0].startswith(f"azora: {down} did not answer: "), output
