"""The Nexus under test: `azora up` in a subprocess on a fresh data dir, or a given URL."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from azora_nexus.backends.process import free_port

BACKEND_URLS = ("DATABASE_URL", "REDIS_URL", "MONGODB_URI")


@dataclass(frozen=True)
class NexusUnderTest:
    """Where the server listens, the secret its tokens are signed with, and its process."""

    url: str
    secret: str
    pid: int | None  # the root of its process tree; None when it runs elsewhere
    log: Path | None = None


def wait_healthy(url: str, process: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    """Return once GET /health answers 200; RuntimeError if the server dies or times out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} during start-up")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url}/health did not answer 200 within {timeout_s:.0f} s")


@contextmanager
def started_nexus(
    *, up_args: list[str], extra_env: dict[str, str], keep_log: Path | None = None
) -> Iterator[NexusUnderTest]:
    """`azora up` with embedded backends on a temporary data dir and a free port, then stopped."""
    data_dir = Path(tempfile.mkdtemp(prefix="azora-bench-"))
    # Embedded PostgreSQL runs as its own user when we are root: it must enter the dir.
    data_dir.chmod(0o755)
    port = free_port()
    secret = secrets.token_urlsafe(48)
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_URLS}
    env |= {
        "AZORA_DATA_DIR": str(data_dir),
        "AZORA_PORT": str(port),
        "AZORA_HOST": "127.0.0.1",
        "AZORA_JWT_SECRET": secret,
        "AZORA_LOG_LEVEL": "WARNING",
        **extra_env,
    }
    log = data_dir / "server.log"
    azora = Path(sys.executable).with_name("azora")
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [str(azora), "up", *up_args],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C of the bench reaches us first, not the server
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout_s=120)
        yield NexusUnderTest(url=url, secret=secret, pid=process.pid, log=log)
    finally:
        stop(process)
        if keep_log is not None and log.exists():
            shutil.copyfile(log, keep_log)
        shutil.rmtree(data_dir, ignore_errors=True)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL to the whole group if it is not gone in 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def given_nexus(url: str, secret: str, pid: int | None) -> Iterator[NexusUnderTest]:
    """A server someone else runs, checked healthy first."""
    wait_healthy(url, None, timeout_s=10)
    yield NexusUnderTest(url=url.rstrip("/"), secret=secret, pid=pid)
