"""What a worker of `--workers N` is started with."""

from __future__ import annotations

import pytest

from azora_nexus.cli.node import worker_env
from azora_nexus.config import Settings


def test_workers_share_one_nodes_postgres_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZORA_DB_POOL_SIZE", raising=False)
    settings = Settings(DATABASE_URL="postgresql://db/azora", AZORA_PORT=4100)
    env = worker_env(settings, "/tmp/metrics", 4)
    assert env["AZORA_DB_POOL_SIZE"] == "5"
    assert env["PROMETHEUS_MULTIPROC_DIR"] == "/tmp/metrics"
    assert env["DATABASE_URL"] == "postgresql://db/azora"
    assert env["AZORA_PORT"] == "4100"
    assert worker_env(settings, "/tmp/metrics", 64)["AZORA_DB_POOL_SIZE"] == "2"


def test_a_pool_size_set_by_hand_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DB_POOL_SIZE", "7")
    assert worker_env(Settings(), "/tmp/metrics", 4)["AZORA_DB_POOL_SIZE"] == "7"
