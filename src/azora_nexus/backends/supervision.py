"""Supervision of the embedded servers: one that exits is started again, on its data dir
and port, with backoff and a ceiling on attempts.

A crash, `kill -9` or the OOM killer ends a server; the watcher sees it within
`POLL_S`, logs it, and restarts it after a backoff (0.5 s, doubling to 8 s) for as long
as it fails, up to `MAX_ATTEMPTS` restarts in `WINDOW_S` (then it logs that it gives up
and leaves the backend down: `/health` says so). Meanwhile every node answers 503 for what
needs that backend (guard.py) and recovers by itself once it is back. Restarts are
counted in `AZORA_DATA_DIR/backend-restarts.json`, which `/metrics` reads
(`azora_backend_restarts_total{backend}`), whichever process serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path

from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from azora_nexus.backends.private import write_private
from azora_nexus.backends.process import ChildServer

logger = logging.getLogger(__name__)

POLL_S = 0.2
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_ATTEMPTS = 10  # restarts of one backend ...
WINDOW_S = 300.0  # ... within this many seconds, then the watcher gives up on it
COUNTS_FILE = "backend-restarts.json"


def read_counts(data_dir: Path) -> dict[str, int]:
    try:
        raw = json.loads((data_dir / COUNTS_FILE).read_text())
        return {str(k): int(v) for k, v in raw.items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_counts(data_dir: Path, counts: Mapping[str, int]) -> None:
    # Replaced whole (a scrape never reads half a file), 0600 like all of the data dir.
    write_private(data_dir / COUNTS_FILE, json.dumps(dict(counts)))


class RestartCounter(Collector):
    """`azora_backend_restarts_total{backend}` from the counts file, read at each scrape."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            "azora_backend_restarts",
            "Restarts of an embedded backend after it exited",
            labels=["backend"],
        )
        counts = read_counts(self.data_dir)
        for name in ("postgres", "redis", "mongo"):
            family.add_metric([name], counts.get(name, 0))
        yield family


class Supervisor:
    """Watches the embedded servers and restarts one that exits."""

    def __init__(self, servers: Mapping[str, ChildServer], data_dir: Path) -> None:
        self.servers = dict(servers)
        self.data_dir = data_dir
        self.counts = read_counts(data_dir)
        self._attempts: dict[str, deque[float]] = {name: deque() for name in self.servers}
        self._task: asyncio.Task[None] | None = None
        self.given_up: set[str] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name="backend supervisor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self) -> None:
        while True:
            for name, server in self.servers.items():
                code = server.exit_code()
                if code is not None and name not in self.given_up:
                    await self._restart(name, server, code)
            await asyncio.sleep(POLL_S)

    async def _restart(self, name: str, server: ChildServer, code: int) -> None:
        how = f"signal {-code}" if code < 0 else f"exit code {code}"
        backoff_s = FIRST_BACKOFF_S
        while True:
            attempts = self._attempts[name]
            now = time.monotonic()
            while attempts and now - attempts[0] > WINDOW_S:
                attempts.popleft()
            if len(attempts) >= MAX_ATTEMPTS:
                self.given_up.add(name)
                logger.error(
                    "%s: %d restarts within %.0f s; giving up (it stays down until azora "
                    "is restarted)",
                    name,
                    MAX_ATTEMPTS,
                    WINDOW_S,
                )
                return
            attempts.append(now)
            logger.warning(
                "%s exited (%s); restarting it on port %d in %.1f s (attempt %d)",
                name,
                how,
                server.port,
                backoff_s,
                len(attempts),
            )
            await asyncio.sleep(backoff_s)
            started = time.monotonic()
            try:
                await server.restart()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("%s did not start again: %s", name, exc)
                how = "failed restart"
                backoff_s = min(backoff_s * 2, MAX_BACKOFF_S)
                continue
            self.counts[name] = self.counts.get(name, 0) + 1
            _write_counts(self.data_dir, self.counts)
            logger.warning(
                "%s restarted on port %d in %.1f s (restarts so far: %d)",
                name,
                server.port,
                time.monotonic() - started,
                self.counts[name],
            )
            return
