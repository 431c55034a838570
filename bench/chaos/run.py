"""The chaos suite: each backend fault against a real `azora up --workers 2`, under load.

    python -m bench.chaos.run [--freeze-s 8] [--only redis-frozen,...] [--json out.json]

Starts `azora up --workers 2` on a fresh data dir and a free port (embedded PostgreSQL,
Valkey and SecantusDB), then, one fault at a time, runs a small steady load (events
published, a profile written and read back, a PostgreSQL-only read, `/health`), injects
the fault into the real process (SIGSTOP/SIGCONT of the server and its children, or
kill -9), and prints fault -> expected -> observed: time to the first 503, time to
recovery, events accepted and lost, stale reads. Everything talks to 127.0.0.1 only and
ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.backends import backend_status
from azora_nexus.backends.process import free_port
from azora_nexus.config import Settings
from bench.chaos.signals import children, freeze, kill_hard, thaw

SECRET = "chaos-secret-that-is-long-enough-for-hs256-signing"
ADMIN = {"Authorization": f"Bearer {issue_token(SECRET, sub='chaos', role=Role.ADMIN)}"}
AZORA = Path(sys.executable).with_name("azora")


@dataclass
class Observed:
    """What the load saw during one fault."""

    fault: str
    expected: str
    first_503_s: float | None = None  # after the fault began, a request that needs it
    slowest_s: float = 0.0  # the slowest answer of that request during the fault
    recovered_s: float | None = None  # after the fault ended (thaw; for a kill: restarted)
    healthy_s: float | None = None  # after the fault began, all 200 again
    accepted: int = 0  # events answered 202
    lost: int = 0  # accepted but never in history
    stale_reads: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def row(self) -> str:
        def s(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f} s"

        seen = ", ".join(f"{k}x{v}" for k, v in sorted(self.statuses.items()))
        observed = (
            f"503 after {s(self.first_503_s)} (slowest answer {self.slowest_s:.2f} s); "
            f"all 200 again {s(self.healthy_s)} after the fault began, {s(self.recovered_s)} "
            f"after it ended; events {self.accepted} accepted, "
            f"{self.lost} lost; stale reads {self.stale_reads}; answers {seen}"
        )
        if self.notes:
            observed += "; " + "; ".join(self.notes)
        return f"| {self.fault} | {self.expected} | {observed} |"


class Node:
    """`azora up --workers 2` on its own data dir and port."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.process: asyncio.subprocess.Process | None = None
        self.settings = Settings(AZORA_DATA_DIR=data_dir)

    async def start(self) -> None:
        env = os.environ | {
            "AZORA_DATA_DIR": str(self.data_dir),
            "AZORA_JWT_SECRET": SECRET,
            "AZORA_LOG_LEVEL": "WARNING",
        }
        for name in ("DATABASE_URL", "REDIS_URL", "MONGODB_URI"):
            env.pop(name, None)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "azora.log").open("ab")
        self.process = await asyncio.create_subprocess_exec(
            str(AZORA), "up", "--port", str(self.port), "--workers", "2",
            env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )  # fmt: skip
        await self.until_healthy(120)

    async def until_healthy(self, within_s: float) -> float:
        started = time.monotonic()
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() - started < within_s:
                try:
                    if (await http.get(f"{self.url}/health")).status_code == 200:
                        return time.monotonic() - started
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"not healthy within {within_s} s (see {self.data_dir}/azora.log)")

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()

    def backend_pid(self, name: str) -> int:
        status = {s.name: s for s in backend_status(self.settings)}[name]
        assert status.pid is not None, f"{name} is not running"
        return status.pid

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        found = []
        for pid in children(self.process.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"azora_nexus" in argv and b"worker" in argv:
                found.append(pid)
        return found


class Load:
    """A steady small load, recording what it sees, until stopped."""

    def __init__(self, node: Node, run: str, user: dict[str, Any]) -> None:
        self.node = node
        self.run = run
        self.user = user
        self.accepted: list[int] = []
        self.statuses: dict[str, int] = {}
        self.stale = 0
        self.pg_answers: list[tuple[float, int, float]] = []  # (at, status, took)
        self.health: list[tuple[float, int]] = []
        self._stop = asyncio.Event()
        self._sent = 0

    async def __aenter__(self) -> Load:
        self._tasks = [
            asyncio.create_task(self._loop(self._publish, 0.05)),
            asyncio.create_task(self._loop(self._write_read, 0.1)),
            asyncio.create_task(self._loop(self._pg_read, 0.1)),
            asyncio.create_task(self._loop(self._health, 0.1)),
        ]
        return self

    async def __aexit__(self, *_: object) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _loop(
        self, step: Callable[[httpx.AsyncClient], Awaitable[None]], every: float
    ) -> None:
        # A new connection per request: a worker or backend that died leaves none behind.
        while not self._stop.is_set():
            async with httpx.AsyncClient(base_url=self.node.url, timeout=30) as http:
                try:
                    await step(http)
                except httpx.HTTPError as exc:
                    self._count(type(exc).__name__)
            await asyncio.sleep(every)

    def _count(self, what: str) -> None:
        self.statuses[what] = self.statuses.get(what, 0) + 1

    async def _publish(self, http: httpx.AsyncClient) -> None:
        self._sent += 1
        seq = self._sent
        body = {"type": "system.alert", "payload": {"run": self.run, "seq": seq}, "source": "chaos"}
        response = await http.post("/events", json=body, headers=ADMIN)
        self._count(f"POST /events {response.status_code}")
        if response.status_code == 202:
            self.accepted.append(seq)

    async def _write_read(self, http: httpx.AsyncClient) -> None:
        path = f"/api/users/{self.user['id']}"
        written = str(time.monotonic_ns())
        patched = await http.patch(f"{path}/profile", json={"bio": written}, headers=self.user["h"])
        self._count(f"PATCH profile {patched.status_code}")
        if patched.status_code != 200:
            return
        read = await http.get(path, headers=self.user["h"])
        self._count(f"GET user {read.status_code}")
        if read.status_code == 200 and int(read.json()["profile"]["bio"] or 0) < int(written):
            self.stale += 1

    async def _pg_read(self, http: httpx.AsyncClient) -> None:
        started = time.monotonic()
        response = await http.get("/api/admin/users", params={"limit": 1}, headers=ADMIN)
        self.pg_answers.append((started, response.status_code, time.monotonic() - started))

    async def _health(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/health")
        self.health.append((time.monotonic(), response.status_code))


async def sign_up(node: Node, name: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        response = await http.post(
            "/api/auth/register",
            json={"email": f"{name}@chaos.dev", "username": name, "password": f"{name}-password"},
        )
        body = response.json()
        return {"id": body["user"]["id"], "h": {"Authorization": f"Bearer {body['token']}"}}


async def lost_events(node: Node, run: str, accepted: list[int]) -> int:
    """Accepted events of this run that never reached history (waits for the relay)."""
    deadline = time.monotonic() + 30
    missing = set(accepted)
    while missing and time.monotonic() < deadline:
        seen: list[int] = []
        after = None
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
            while True:
                params: dict[str, Any] = {"type": "system.alert", "limit": 1000}
                if after:
                    params["after"] = after
                response = await http.get("/events", params=params, headers=ADMIN)
                if response.status_code != 200:
                    break
                events = response.json()["events"]
                seen += [e["payload"]["seq"] for e in events if e["payload"].get("run") == run]
                if len(events) < 1000:
                    break
                after = events[-1]["id"]
        missing = set(accepted) - set(seen)
        duplicates = len(seen) - len(set(seen))
        if duplicates:
            raise RuntimeError(f"{duplicates} events published twice in {run}")
        if missing:
            await asyncio.sleep(0.5)
    return len(missing)


def summarise(observed: Observed, load: Load, began: float, ended: float, pg: bool) -> None:
    answers = load.pg_answers if pg else [(t, s, 0.0) for t, s in load.health]
    during = [(t, s, took) for t, s, took in answers if began <= t <= ended + 0.5]
    first = next((t + took for t, s, took in during if s == 503), None)
    observed.first_503_s = None if first is None else first - began
    observed.slowest_s = max((took for _, _, took in during), default=0.0)
    after = [(t, s) for t, s, _ in answers if t > ended]
    bad = [t for t, s in after if s != 200]
    last_bad = max(bad, default=ended)
    recovered = any(t > last_bad for t, _ in after)
    observed.recovered_s = last_bad - ended if recovered else None
    observed.healthy_s = last_bad - began if recovered else None
    observed.accepted = len(load.accepted)
    observed.stale_reads = load.stale
    observed.statuses = load.statuses


FaultStep = Callable[[Node], Awaitable[tuple[float, float]]]


def frozen(name: str, seconds: float) -> FaultStep:
    async def step(node: Node) -> tuple[float, float]:
        pid = node.backend_pid(name)
        began = time.monotonic()
        freeze(pid)
        try:
            await asyncio.sleep(seconds)
        finally:
            thaw(pid)
        return began, time.monotonic()

    return step


def killed(name: str) -> FaultStep:
    async def step(node: Node) -> tuple[float, float]:
        pid = node.backend_pid(name)
        began = time.monotonic()
        kill_hard(pid)
        deadline = began + 60
        while time.monotonic() < deadline:  # until the supervisor has it running again
            await asyncio.sleep(0.1)
            try:
                if node.backend_pid(name) != pid:
                    break
            except AssertionError:
                continue
        return began, time.monotonic()

    return step


async def run_fault(
    node: Node, fault: str, expected: str, step: FaultStep, *, pg: bool, settle_s: float = 4.0
) -> Observed:
    observed = Observed(fault, expected)
    run = f"{fault}-{time.monotonic_ns()}"
    user = await sign_up(node, f"u{time.monotonic_ns() % 10**12}")
    async with Load(node, run, user) as load:
        await asyncio.sleep(1.0)
        began, ended = await step(node)
        await asyncio.sleep(settle_s)
    summarise(observed, load, began, ended, pg)
    observed.lost = await lost_events(node, run, load.accepted)
    return observed


async def stale_after_restart(node: Node) -> Observed:
    """Read, kill Redis, write, restart `azora up`, read: the new value, never the old."""
    observed = Observed("redis killed, a profile written, azora up restarted", "0 stale reads")
    reads = []
    for attempt in range(5):
        user = await sign_up(node, f"r{attempt}x{time.monotonic_ns() % 10**9}")
        path = f"/api/users/{user['id']}"
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
            await http.patch(f"{path}/profile", json={"bio": "old"}, headers=user["h"])
            await http.get(path, headers=user["h"])  # cached
            await asyncio.sleep(1.2)  # in the AOF
            kill_hard(node.backend_pid("redis"))
            written = await http.patch(f"{path}/profile", json={"bio": "new"}, headers=user["h"])
            observed.statuses[f"PATCH {written.status_code}"] = (
                observed.statuses.get(f"PATCH {written.status_code}", 0) + 1
            )
        await node.stop()
        await node.start()
        async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
            for _ in range(10):
                read = await http.get(path, headers=user["h"])
                reads.append(read.json()["profile"]["bio"] if read.status_code == 200 else None)
    observed.stale_reads = reads.count("old")
    observed.notes.append(f"{len(reads)} reads after 5 restarts: {reads.count('new')} new")
    return observed


async def erased_while_redis_frozen(node: Node, seconds: float) -> Observed:
    observed = Observed("erased user's token while Redis is frozen", "401 (refused)")
    user = await sign_up(node, f"e{time.monotonic_ns() % 10**12}")
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        await http.request("DELETE", f"/api/users/{user['id']}", headers=ADMIN)
        pid = node.backend_pid("redis")
        freeze(pid)
        try:
            for _ in range(int(seconds * 5)):
                answer = await http.get(f"/api/users/{user['id']}", headers=user["h"])
                key = f"GET erased {answer.status_code}"
                observed.statuses[key] = observed.statuses.get(key, 0) + 1
                await asyncio.sleep(0.2)
        finally:
            thaw(pid)
    return observed


def _keep_alive_connections(node: Node, count: int) -> list[socket.socket]:
    """Connections that served one request and stay open (spread over the workers)."""
    opened = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", node.port), timeout=10)
        sock.sendall(b"GET /events/types HTTP/1.1\r\nHost: chaos\r\n\r\n")
        head, _, body = sock.recv(65536).partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += sock.recv(65536)
        opened.append(sock)
    return opened


def _post_on(sock: socket.socket) -> str:
    """What a POST on a kept-alive connection gets: an answer, a clean close, or a reset."""
    body = b'{"type": "system.alert", "payload": {}, "source": "chaos"}'
    head = (
        f"POST /events HTTP/1.1\r\nHost: chaos\r\nContent-Type: application/json\r\n"
        f"Authorization: {ADMIN['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    try:
        sock.sendall(head.encode() + body)
        answer = sock.recv(65536)
    except ConnectionResetError:
        return "reset"
    except OSError as exc:
        return type(exc).__name__
    finally:
        sock.close()
    return "clean close" if not answer else answer.split(b"\r\n")[0].decode()


def worker_index(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    return argv[argv.index("--index") + 1]


async def worker_killed(node: Node) -> Observed:
    """kill -9 of a worker: are new connections served meanwhile, and when does its
    replacement serve? (An Engine.IO handshake's sid starts with the answering worker's
    index, so the first one with the dead worker's index came from the replacement.)"""
    observed = Observed("worker killed (kill -9)", "new connections served; replaced in ~1 s")
    victim = node.worker_pids()[0]
    index = worker_index(victim)
    kept = await asyncio.to_thread(_keep_alive_connections, node, 6)
    began = time.monotonic()
    kill_hard(victim)
    await asyncio.sleep(0.5)
    for outcome in await asyncio.gather(*(asyncio.to_thread(_post_on, s) for s in kept)):
        key = f"POST on a kept-alive connection: {outcome}"
        observed.statuses[key] = observed.statuses.get(key, 0) + 1
    failures = served = 0
    async with asyncio.timeout(60):
        while observed.recovered_s is None:
            async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
                try:
                    response = await http.get(
                        "/socket.io/", params={"EIO": "4", "transport": "polling"}
                    )
                    sid = json.loads(response.text[1:])["sid"]
                    served += 1
                    if sid.startswith(f"{index}."):
                        observed.recovered_s = time.monotonic() - began
                except (httpx.HTTPError, ValueError, KeyError):
                    failures += 1
            await asyncio.sleep(0.02)
    observed.healthy_s = observed.recovered_s
    observed.statuses |= {"new connections served meanwhile": served, "failed": failures}
    return observed


async def main(argv: list[str] | None = None) -> list[Observed]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--freeze-s", type=float, default=8.0)
    parser.add_argument("--only", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    wanted = {name for name in args.only.split(",") if name}
    freeze_s = args.freeze_s
    faults: list[tuple[str, Callable[[Node], Awaitable[Observed]]]] = [
        ("redis-frozen", lambda n: run_fault(
            n, f"Redis frozen {freeze_s:g} s",
            "POST /events 202 (outbox), reads 200, /health 503, recovers, 0 lost, 0 stale",
            frozen("redis", freeze_s), pg=False)),
        ("redis-killed", lambda n: run_fault(
            n, "Redis killed (kill -9)",
            "restarted on its port, /health 503 then 200, 0 lost, 0 stale",
            killed("redis"), pg=False)),
        ("redis-restart-stale", stale_after_restart),
        ("erased-redis-frozen", lambda n: erased_while_redis_frozen(n, 3)),
        ("postgres-frozen", lambda n: run_fault(
            n, f"PostgreSQL frozen {freeze_s:g} s",
            "503 postgres within 2 s, then at once; no hang; recovers by itself",
            frozen("postgres", freeze_s), pg=True)),
        ("postgres-killed", lambda n: run_fault(
            n, "PostgreSQL killed (kill -9)",
            "503 postgres, restarted on its port, recovers by itself, 0 lost",
            killed("postgres"), pg=True, settle_s=6)),
        ("mongo-frozen", lambda n: run_fault(
            n, f"MongoDB frozen {freeze_s:g} s",
            "GET /events 200 from the stream; archive catches up; 0 lost",
            frozen("mongo", freeze_s), pg=False)),
        ("mongo-killed", lambda n: run_fault(
            n, "MongoDB killed (kill -9)", "restarted; history and events unaffected; 0 lost",
            killed("mongo"), pg=False)),
        ("worker-killed", worker_killed),
    ]  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="azora-chaos-") as name:
        os.chmod(name, 0o755)  # the embedded PostgreSQL runs as its own user
        node = Node(Path(name) / "data", free_port())
        await node.start()
        try:
            for key, fault in faults:
                if wanted and key not in wanted:
                    continue
                observed = await fault(node)
                print(observed.row(), flush=True)
                results.append(observed)
                await node.until_healthy(60)
        finally:
            await node.stop()
    if args.json:
        args.json.write_text(json.dumps([o.__dict__ for o in results], indent=1))
    return results


if __name__ == "__main__":
    print("| fault | expected | observed |\n|---|---|---|", flush=True)
    asyncio.run(main())
