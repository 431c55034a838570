"""A real cluster on one box: Debian's PostgreSQL 15 and Redis 7, the embedded Mongo server,
three `azora serve` nodes and Debian's HAProxy with the committed deploy/haproxy/haproxy.cfg.

The README's recipe ("Scaling past one machine") is this, step by step.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from azora_nexus.config import Settings
from tests.realtime.node_process import AZORA, NodeProcess
from tests.support.server import reserve_port
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
DEBIAN_BACKENDS = ROOT / "scripts" / "debian-backends"
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
HAPROXY = Path("/usr/sbin/haproxy")
NODE_COUNT = 3
# Three nodes importing and opening everything at once on two cores shared with other runs.
NODE_START_TIMEOUT_S = 60.0


@dataclass
class Cluster:
    """Three nodes behind HAProxy; `url` is the balancer's."""

    url: str
    nodes: list[NodeProcess]
    settings: Settings
    haproxy: asyncio.subprocess.Process


@asynccontextmanager
async def debian_backends(data_dir: Path) -> AsyncIterator[tuple[str, str]]:
    """PostgreSQL 15 and Redis 7 started by scripts/debian-backends (as CI's backend pass
    starts them); their URLs."""
    pg_port, redis_port = reserve_port(), reserve_port()
    started = await asyncio.create_subprocess_exec(
        str(DEBIAN_BACKENDS),
        *("start", str(data_dir), str(pg_port), str(redis_port)),
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        out, _ = await asyncio.wait_for(started.communicate(), 60)
        assert started.returncode == 0, "scripts/debian-backends start failed"
        urls = dict(line.split("=", 1) for line in out.decode().split())
        yield urls["DATABASE_URL"], urls["REDIS_URL"]
    finally:
        stopped = await asyncio.create_subprocess_exec(
            str(DEBIAN_BACKENDS), "stop", str(data_dir), stdin=asyncio.subprocess.DEVNULL
        )
        await asyncio.wait_for(stopped.wait(), 60)


@asynccontextmanager
async def azora_backends(data_dir: Path, database_url: str, redis_url: str) -> AsyncIterator[str]:
    """`azora backends` with PostgreSQL and Redis given: the Mongo server's URL."""
    env = os.environ | {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "AZORA_DATA_DIR": str(data_dir),
        "AZORA_LOG_LEVEL": "WARNING",
    }
    env.pop("MONGODB_URI", None)
    process = await asyncio.create_subprocess_exec(
        *(str(AZORA), "backends"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        urls: dict[str, str] = {}
        assert process.stdout is not None
        async with asyncio.timeout(60):
            while "MONGODB_URI" not in urls:
                line = await process.stdout.readline()
                assert line, f"azora backends exited with {await process.wait()}"
                name, _, value = line.decode().strip().partition("=")
                urls[name] = value
        assert urls["DATABASE_URL"] == database_url, urls
        yield urls["MONGODB_URI"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), 30)
    assert code == 0, f"azora backends exited with {code} on SIGTERM"


@asynccontextmanager
async def haproxy(
    bind_port: int, node_urls: list[str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """HAProxy on `bind_port` with the committed config, the nodes given by environment."""
    env = os.environ | {"AZORA_LB_BIND": f"127.0.0.1:{bind_port}"}
    for index, url in enumerate(node_urls, start=1):
        env[f"AZORA_NODE{index}"] = url.removeprefix("http://")
    checked = subprocess.run(
        [str(HAPROXY), "-c", "-q", "-f", str(HAPROXY_CONFIG)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    process = await asyncio.create_subprocess_exec(
        *(str(HAPROXY), "-db", "-f", str(HAPROXY_CONFIG)),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)  # hard stop: close everything now
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
        await process.wait()


@asynccontextmanager
async def run_cluster(data_dir: Path, jwt_secret: str) -> AsyncIterator[Cluster]:
    """The whole cluster while the context lasts, stopped in reverse order."""
    async with AsyncExitStack() as stack:
        database_url, redis_url = await stack.enter_async_context(
            debian_backends(data_dir / "debian")
        )
        # `azora backends` (the project's launcher) starts only what has no URL: the Mongo
        # server; and it migrates, once, before any node (`azora serve` does not).
        mongodb_uri = await stack.enter_async_context(
            azora_backends(data_dir / "mongo", database_url, redis_url)
        )
        settings = Settings(
            DATABASE_URL=database_url,
            REDIS_URL=redis_url,
            MONGODB_URI=mongodb_uri,
            AZORA_DATA_DIR=data_dir / "nodes",
            AZORA_JWT_SECRET=jwt_secret,
            AZORA_ENV="test",
        )
        nodes: list[NodeProcess] = []
        stack.push_async_callback(lambda: _stop_all(nodes))
        results = await asyncio.gather(
            *(
                NodeProcess.start(settings, f"node{i}", ready_timeout_s=NODE_START_TIMEOUT_S)
                for i in range(1, NODE_COUNT + 1)
            ),
            return_exceptions=True,
        )
        nodes.extend(r for r in results if isinstance(r, NodeProcess))
        for result in results:
            if isinstance(result, BaseException):
                raise result
        port = reserve_port()
        process = await stack.enter_async_context(haproxy(port, [n.url for n in nodes]))
        url = f"http://127.0.0.1:{port}"
        await _wait_serving(url, process)
        yield Cluster(url=url, nodes=nodes, settings=settings, haproxy=process)


async def _stop_all(nodes: list[NodeProcess]) -> None:
    # kill -9: a graceful stop would wait out (5 s) the long polls HAProxy has already cut,
    # and a node's shutdown is tested elsewhere (tests/cli).
    for node in nodes:
        if node.process.returncode is None:
            node.kill()
    await asyncio.gather(*(node.process.wait() for node in nodes))


async def _wait_serving(url: str, process: asyncio.subprocess.Process) -> None:
    async def serving() -> bool:
        assert process.returncode is None, f"haproxy exited with {process.returncode}"
        try:
            return (await http.get(f"{url}/health")).status_code == 200
        except httpx.TransportError:
            return False

    async with httpx.AsyncClient(timeout=2) as http:
        await eventually(serving, timeout_s=10)
