"""Embedded MongoDB-compatible server: SecantusDB, run as a separate process only.

SecantusDB is GPL-2.0: Nexus never imports it, it only runs `python -m secantus` and speaks
the MongoDB wire protocol to it (BACKENDS.md section 4).
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from pathlib import Path

from pymongo import AsyncMongoClient

from azora_nexus.backends.private import write_private
from azora_nexus.backends.process import LOCALHOST, ChildServer
from azora_nexus.errors import BackendStartError

DATABASE = "azora"


class EmbeddedMongo(ChildServer):
    """SecantusDB on 127.0.0.1, data under `data_dir` (`AZORA_DATA_DIR/secantus`)."""

    name = "mongo"
    engine = "secantus 0.7"
    stop_signal = signal.SIGINT
    stop_timeout_s = 10.0  # it takes about 2 s to close WiredTiger cleanly
    ready_timeout_s = 30.0

    @property
    def config_path(self) -> Path:
        return self.data_dir / "secantusd.toml"

    def check_binaries(self) -> None:
        if importlib.util.find_spec("secantus") is None:
            raise BackendStartError("mongo: the SecantusDB server is missing (install secantusdb)")

    def check_foreign_data(self) -> None:
        """The engine marker is the only sign: WiredTiger files look alike across engines."""

    def prepare(self) -> None:
        """The config is written at each start, since the port may change."""

    def command(self) -> list[str]:
        # Always --config: without it the server reads ./secantusd.toml and ~/.secantus.
        return [sys.executable, "-m", "secantus", "--config", str(self.config_path)]

    def before_spawn(self) -> None:
        write_private(
            self.config_path,
            "[server]\n"
            f'host = "{LOCALHOST}"\n'
            f"port = {self.port}\n"
            f'storage_path = "{self.data_dir / "wiredtiger"}"\n'
            "\n[storage]\n"
            "sync_on_commit = true\n"
            'cache_size = "256M"\n',
        )

    def client_url(self) -> str:
        # retryWrites=false: the server scans its retry registry on every retryable write.
        return f"mongodb://{LOCALHOST}:{self.port}/{DATABASE}?retryWrites=false"

    async def probe(self, timeout_s: float) -> None:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self.client_url(),
            serverSelectionTimeoutMS=int(timeout_s * 1000),
            connectTimeoutMS=int(timeout_s * 1000),
        )
        try:
            await client.admin.command("hello")
        finally:
            await client.close()
