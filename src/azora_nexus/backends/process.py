"""One mechanism for running a database server as a foreground child process.

Each engine (postgres.py, redis.py, mongo.py) says how to prepare its data dir, the command
line, and how to probe readiness; this module does the rest the same way for all three:
engine markers, a pid file, stale servers left by a killed launcher, port choice, a bounded
readiness wait and a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from azora_nexus.backends.private import (
    PASSWORD_FILE,
    PRIVATE_UMASK,
    open_private_log,
    private_dir,
    read_password,
    write_private,
)
from azora_nexus.errors import BackendStartError

logger = logging.getLogger(__name__)

PID_FILE = "azora-server.json"
ENGINE_FILE = "AZORA_ENGINE"
LOCALHOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerRecord:
    """What a running server left in its data dir: enough to find it again."""

    pid: int
    port: int
    url: str

    @classmethod
    def read(cls, data_dir: Path) -> ServerRecord | None:
        try:
            raw = json.loads((data_dir / PID_FILE).read_text())
            return cls(pid=int(raw["pid"]), port=int(raw["port"]), url=str(raw["url"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def write(self, data_dir: Path) -> None:
        # The URL carries the server's password: the file is private (0600).
        body = json.dumps({"pid": self.pid, "port": self.port, "url": self.url})
        write_private(data_dir / PID_FILE, body)


def is_alive(pid: int) -> bool:
    """True when `pid` runs and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_port_free(port: int, name: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As the servers themselves bind: connections of a previous run in TIME_WAIT do not
        # make the port "taken", a listener does.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError as exc:
            raise BackendStartError(
                f"{name}: port {port} on {LOCALHOST} is already taken ({exc.strerror})"
            ) from exc


def last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip() if lines else ""


class ChildServer(ABC):
    """A server run as our own foreground child, with its files under `data_dir`."""

    name: str
    engine: str  # engine and major version, written to the data dir's marker
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 10.0
    ready_timeout_s: float = 30.0

    def __init__(self, data_dir: Path, port: int = 0) -> None:
        self.data_dir = data_dir
        self.configured_port = port
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._url: str | None = None

    # What each engine says -------------------------------------------------------------
    @abstractmethod
    def check_binaries(self) -> None:
        """Raise BackendStartError naming what is missing."""

    @abstractmethod
    def check_foreign_data(self) -> None:
        """Raise BackendStartError when the dir holds another engine's or version's data."""

    @abstractmethod
    def prepare(self) -> None:
        """Create the data dir's contents on first start (blocking; runs in a thread)."""

    @abstractmethod
    def command(self) -> list[str]:
        """The server's command line for `self.port`."""

    @abstractmethod
    def client_url(self) -> str:
        """The URL clients use for `self.port`."""

    @abstractmethod
    async def probe(self, timeout_s: float) -> None:
        """A real round trip (query, PING, hello); raises when the server does not answer."""

    def before_spawn(self) -> None:
        """Called once the port is chosen, right before the server starts."""

    def give(self, path: Path) -> None:
        """Hand a file we wrote in the data dir to the server's own user, if it has one."""

    def popen_options(self) -> dict[str, Any]:
        """Extra `subprocess.Popen` keywords (e.g. the user to run as)."""
        return {}

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def password_path(self) -> Path:
        """Where the server's password, generated on its first start, is kept (0600)."""
        return self.data_dir / PASSWORD_FILE

    def password(self) -> str:
        """The server's generated password (BackendStartError before its first start)."""
        password = read_password(self.password_path)
        if password is None:
            raise BackendStartError(f"{self.name}: {self.password_path} is missing")
        return password

    # The shared mechanism --------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError(f"{self.name} is not started")
        return self._url

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def exit_code(self) -> int | None:
        """The exit code (a negative signal number) once the server has exited; None while
        it runs or when it was never started."""
        return None if self._process is None else self._process.poll()

    async def restart(self) -> str:
        """Start the server again after it exited: same data dir, same port, same URL."""
        await self.stop()  # reaps the exited process (or stops one still running)
        await asyncio.to_thread(self.before_restart)
        self.configured_port = self.port
        return await self.start()

    def before_restart(self) -> None:
        """What a crashed server leaves behind that would stop it starting again."""

    async def start(self) -> str:
        """Start the server as a child and wait until it answers a real request."""
        self.check_binaries()
        if not self.data_dir.exists():
            private_dir(self.data_dir)
        await self.stop_stale()
        self.check_engine_marker()
        await asyncio.to_thread(self.prepare)
        write_private(self.data_dir / ENGINE_FILE, self.engine + "\n")
        self.give(self.data_dir / ENGINE_FILE)
        if self.configured_port:
            ensure_port_free(self.configured_port, self.name)
            self.port = self.configured_port
        else:
            self.port = free_port()
        self.before_spawn()
        started = time.perf_counter()
        with open_private_log(self.log_path) as log:
            self._process = self._spawn(log)
        self._url = self.client_url()
        ServerRecord(pid=self._process.pid, port=self.port, url=self._url).write(self.data_dir)
        self.give(self.data_dir / PID_FILE)
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        logger.info(
            "%s ready on port %d in %.2f s", self.name, self.port, time.perf_counter() - started
        )
        return self._url

    def _spawn(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        # A new session: Ctrl-C in a terminal reaches the launcher only, which then stops
        # the servers in order instead of every process racing to shut down at once.
        return subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=PRIVATE_UMASK,  # what the server writes (data, AOF, its own logs) is 0600
            **self.popen_options(),
        )

    async def _wait_ready(self) -> None:
        """Wait for the port to accept, then for a real request to succeed, both bounded."""
        deadline = time.monotonic() + self.ready_timeout_s
        # Probing before the port listens would leave client sockets half-open behind.
        await self._retry_until(deadline, self._port_accepts)
        await self._retry_until(deadline, lambda: self.probe(timeout_s=2.0))

    async def _retry_until(self, deadline: float, attempt: Callable[[], Awaitable[None]]) -> None:
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                why = last_line(self.log_path) or f"exit code {self._process.returncode}"
                raise BackendStartError(f"{self.name} exited at start: {why}")
            try:
                await attempt()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise BackendStartError(
                        f"{self.name} did not answer within {self.ready_timeout_s:.0f} s: {exc}"
                    ) from exc
            await asyncio.sleep(0.02)

    async def _port_accepts(self) -> None:
        _, writer = await asyncio.open_connection(LOCALHOST, self.port)
        writer.close()
        await writer.wait_closed()

    def check_engine_marker(self) -> None:
        marker = self.data_dir / ENGINE_FILE
        if marker.exists():
            found = marker.read_text().strip()
            if found != self.engine:
                raise BackendStartError(
                    f"{self.name}: {self.data_dir} holds {found} data; this build runs "
                    f"{self.engine} (use another AZORA_DATA_DIR)"
                )
        self.check_foreign_data()

    async def stop_stale(self) -> None:
        """Stop a server a killed launcher left running on this data dir.

        The caller holds the data dir lock, so a live server recorded here has no owner.
        """
        record = ServerRecord.read(self.data_dir)
        if record is None or not is_alive(record.pid):
            return
        if not self.is_our_server(command_line(record.pid)):
            return  # the pid was reused by an unrelated process
        logger.warning(
            "%s: stopping a stale server (pid %d) left by a killed run", self.name, record.pid
        )
        await stop_pid(record.pid, self.stop_signal, self.stop_timeout_s)

    def is_our_server(self, argv: list[str]) -> bool:
        # Redis rewrites its title ("redis-server 127.0.0.1:6379"), so compare names only.
        return bool(argv) and Path(argv[0].split()[0]).name == Path(self.command()[0]).name

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(self.stop_signal)
            try:
                await asyncio.to_thread(process.wait, self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "%s did not stop in %.0f s; killing it", self.name, self.stop_timeout_s
                )
                process.kill()
                await asyncio.to_thread(process.wait)
        with contextlib.suppress(FileNotFoundError):
            (self.data_dir / PID_FILE).unlink()


async def stop_pid(pid: int, sig: signal.Signals, timeout_s: float) -> None:
    """Signal a process that is not our child and wait for it to go away."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while is_alive(pid):
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout_s
        await asyncio.sleep(0.05)
