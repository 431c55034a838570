"""Transfers over HTTP: `azora serve` on the bench's backends, loaded by wrk.

wrk (C, light on the shared cores) keeps `connections` requests in flight; its Lua script
(written here at run time) draws source and target wallets Zipf s=1 and gives every
request a fresh idempotency key. The script's `done` prints the figures as one JSON line.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psutil

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.backends import BackendUrls
from azora_nexus.backends.process import free_port
from bench.fanout.server import wait_healthy

WRK = shutil.which("wrk") or "/usr/bin/wrk"

SCRIPT = """
local wallets = {%(wallets)s}
local token = "%(token)s"
local run = "%(run)s"
local cumulative, total = {}, 0
for rank = 1, #wallets do total = total + 1 / rank; cumulative[rank] = total end
local threads, made = {}, 0
function setup(thread)
  made = made + 1
  thread:set("tid", made)
  table.insert(threads, thread)
end
local prefix, count
function init(args)
  math.randomseed(os.time() * 1000 + tid * 7919)
  prefix = run .. "-" .. tid .. "-"
  count = 0
end
local function pick()
  local r = math.random() * total
  for rank = 1, #cumulative do
    if r <= cumulative[rank] then return wallets[rank] end
  end
  return wallets[#wallets]
end
function request()
  local source, target = pick(), pick()
  while target == source do target = pick() end
  count = count + 1
  local body = string.format(
    '{"fromWalletId":"%%s","toWalletId":"%%s","amount":"%%d.%%02d","idempotencyKey":"%%s%%d"}',
    source, target, math.random(0, 9), math.random(1, 99), prefix, count)
  return wrk.format("POST", "/api/wallets/transfer",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests":%%d,"duration_us":%%d,"non_2xx":%%d,"connect":%%d,"read":%%d,'
    .. '"write":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@contextmanager
def served_node(urls: BackendUrls, workers: int, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """`azora serve` on a free port against `urls`; its URL and JWT secret. Stopped after."""
    data_dir = Path(tempfile.mkdtemp(prefix="azora-ledger-http-"))
    port = free_port()
    secret = secrets.token_urlsafe(48)
    environment = os.environ | {
        "DATABASE_URL": urls.database,
        "REDIS_URL": urls.redis,
        "MONGODB_URI": urls.mongodb,
        "AZORA_DATA_DIR": str(data_dir),
        "AZORA_JWT_SECRET": secret,
        "AZORA_LOG_LEVEL": "WARNING",
        **env,
    }
    azora = Path(sys.executable).with_name("azora")
    log = (data_dir / "server.log").open("wb")
    process = subprocess.Popen(
        [str(azora), "serve", "--port", str(port), "--workers", str(workers)],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout_s=60 * workers)
        yield url, secret
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(data_dir, ignore_errors=True)


def listening_pid(port: int) -> int:
    """The pid listening on `port` on this machine."""
    for conn in psutil.net_connections("tcp"):
        address = conn.laddr
        listening = conn.status == "LISTEN" and conn.pid
        if listening and isinstance(address, tuple) and address and address[1] == port:
            return int(conn.pid or 0)
    raise RuntimeError(f"nothing listens on port {port}")


def node_pid(url: str) -> int:
    """The pid listening on `url`'s port (the `azora serve` parent)."""
    return listening_pid(int(url.rsplit(":", 1)[1]))


def load(
    url: str, secret: str, wallets: list[uuid.UUID], connections: int, seconds: float
) -> dict[str, Any]:
    """wrk's figures for `seconds` of transfers from `connections` connections."""
    token = issue_token(secret, sub="bench", role=Role.SERVICE, ttl_s=3600)
    script = SCRIPT % {
        "wallets": ",".join(f'"{w}"' for w in wallets),
        "token": token,
        "run": uuid.uuid4().hex[:12],
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
        file.write(script)
    try:
        command = [WRK, "-t2", f"-c{connections}", f"-d{round(seconds)}s", "--timeout", "10s"]
        done = subprocess.run(
            [*command, "-s", file.name, url],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(file.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRK "))
    figures: dict[str, Any] = json.loads(line[4:])
    figures["transfers_per_s"] = round(figures["requests"] / (figures["duration_us"] / 1e6), 1)
    return figures


def wait_idle(seconds: float) -> None:
    """A pause between runs, so one's tail does not load the next one's start."""
    time.sleep(seconds)
