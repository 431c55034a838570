"""Backends the fault tests may freeze (SIGSTOP) and kill (SIGKILL) for real."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.chaos.signals import freeze, thaw

from azora_nexus.backends.process import ChildServer
from azora_nexus.config import Settings

JWT_SECRET = "test-secret-that-is-long-enough-for-hs256-signing"
# Short, so the suite stays quick; the chaos run (bench/chaos) uses the defaults.
TIMEOUT_S = 1.5
RETRY_S = 0.3


@dataclass
class OwnBackends:
    """Embedded servers this module may stop, freeze and kill."""

    data_dir: Path
    servers: dict[str, ChildServer]

    @property
    def urls(self) -> dict[str, str]:
        return {name: server.url for name, server in self.servers.items()}

    def pid(self, name: str) -> int:
        pid = self.servers[name].pid
        assert pid is not None
        return pid

    @contextmanager
    def frozen(self, name: str) -> Iterator[None]:
        """SIGSTOP the server and its children (PostgreSQL serves each connection from a
        process of its own) for the body; SIGCONT whatever happens."""
        pid = self.pid(name)
        freeze(pid)
        try:
            yield
        finally:
            thaw(pid)

    def settings(self, **extra: object) -> Settings:
        values: dict[str, object] = {
            "DATABASE_URL": self.urls["postgres"],
            "REDIS_URL": self.urls["redis"],
            "MONGODB_URI": self.urls["mongo"],
            "AZORA_DATA_DIR": self.data_dir / "node",
            "AZORA_JWT_SECRET": JWT_SECRET,
            "AZORA_ENV": "test",
            "AZORA_BACKEND_TIMEOUT_S": TIMEOUT_S,
            "AZORA_BACKEND_RETRY_S": RETRY_S,
        }
        return Settings(**(values | extra))  # type: ignore[arg-type]
