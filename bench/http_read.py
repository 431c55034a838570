"""Cached reads over HTTP: `GET /api/users/{id}` on Nexus beside the bare FastAPI anchor.

Run: `.venv/bin/python -m bench.http_read --vs-bare [--seconds 15] [--rounds 2]
[--connections 64] [--profile]`.

Starts `azora up --workers 2` on a fresh data dir (127.0.0.1 only), registers one user and
reads it once (the cache now holds it). With `--vs-bare` it also serves `bench.bare_read`
(PyJWT HS256 verify + one Redis GET + the stored bytes; uvicorn, 2 workers, uvloop,
httptools) on the node's own Redis, the key holding the bytes Nexus answered. Then, in
turn for `--rounds` rounds, wrk (`--connections`, 2 threads, the token set by a wrk Lua
script) loads each for `--seconds` after a short warm-up. Every target answers the same
user with the same token; each round reports req/s, p50 and p99, the serving processes'
CPU per request, the cores they got and how often the scheduler preempted them (their
involuntary context switches), with the box's load average at its end; the run reports
the median of the rounds. `--profile` records the Nexus workers with py-spy during one extra run
(bench/results/http_read-profile.txt: the functions taking the most CPU, own and total).
Writes bench/results/http_read.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from azora_nexus.backends.launcher import attach_backends
from azora_nexus.config import Settings

RESULTS = Path(__file__).with_name("results")
SECRET = "http-read-bench-secret-long-enough-for-hs256"
BARE_PREFIX = "bare:user:"
WARMUP_S = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "MONGODB_URI")
    return {k: v for k, v in os.environ.items() if k not in drop}


async def wait_ready(url: str, process: subprocess.Popen[bytes], path: str = "/health") -> None:
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise SystemExit(f"{process.args!r} exited with {process.returncode}")
            try:
                if (await http.get(url + path)).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"{url} did not come up in 120 s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def latency_ms(output: str, percentile: str) -> float:
    found = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no p{percentile} in wrk's output:\n{output}")
    return float(found.group(1)) * _UNITS[found.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    socket_errors = re.search(r"Socket errors: (.*)", output)
    if rate is None:
        raise RuntimeError(f"no Requests/sec in wrk's output:\n{output}")
    return {
        "rps": float(rate.group(1)),
        "p50_ms": latency_ms(output, "50"),
        "p99_ms": latency_ms(output, "99"),
        "non_2xx": int(errors.group(1)) if errors else 0,
        "socket_errors": socket_errors.group(1) if socket_errors else "",  # type: ignore[dict-item]
    }


TICKS_S = os.sysconf("SC_CLK_TCK")


def server_pids(parent: int, marker: str) -> list[int]:
    """`parent` and its children whose command line holds `marker` (the serving processes,
    not the backends the node started)."""
    found = subprocess.run(
        ["pgrep", "-P", str(parent)], capture_output=True, text=True, check=False
    )
    children = [int(p) for p in found.stdout.split()]
    cmdlines = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ") for p in children}
    return [parent] + [p for p, line in cmdlines.items() if marker.encode() in line]


def cpu_s(pids: list[int]) -> float:
    """User + system CPU the processes have used so far."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS_S


def preemptions(pids: list[int]) -> int:
    """Involuntary context switches of the processes' threads so far: how often the
    scheduler took a core from them while they still had work (CPU contention)."""
    total = 0
    for pid in pids:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for line in (task / "status").read_text().splitlines():
                if line.startswith("nonvoluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


def measured(
    url: str, script: Path, connections: int, seconds: float, pids: list[int]
) -> dict[str, float]:
    """One wrk round, with the CPU the serving processes spent per request, the cores they
    got, how often they were preempted and the box's load average at the round's end
    (the tail follows the CPU the box leaves them: see the README's cached reads)."""
    before, preempted = cpu_s(pids), preemptions(pids)
    result = wrk(url, script, connections, seconds)
    spent = cpu_s(pids) - before
    return result | {
        "cpu_us_per_req": 1e6 * spent / max(1.0, result["rps"] * seconds),
        "cores": spent / seconds,
        "preempted_per_s": (preemptions(pids) - preempted) / seconds,
        "load1": os.getloadavg()[0],
    }


def wrk(url: str, script: Path, connections: int, seconds: float) -> dict[str, float]:
    command = [
        "/usr/bin/wrk",
        "-t2",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=seconds + 60
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr}")
    return parse_wrk(done.stdout)


def profile(pids: list[int], url: str, script: Path, args: argparse.Namespace) -> str:
    """py-spy's summary of the Nexus workers while wrk loads them: non-blocking sampling,
    so a paused worker does not time out on Redis and skew what it measures."""
    from bench.fanout.profile import py_spy, summarize

    raws = [RESULTS / f"http_read-profile-{pid}.raw" for pid in pids]
    spies = [
        subprocess.Popen(
            [py_spy(), "record", "--pid", str(pid), "--duration", str(round(args.seconds)),
             "--rate", "100", "--nonblocking", "--format", "raw", "--output", str(raw)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid, raw in zip(pids, raws, strict=True)
    ]  # fmt: skip
    wrk(url, script, args.connections, args.seconds)
    for spy in spies:
        spy.wait(120)
    text = "".join(raw.read_text() for raw in raws if raw.exists())
    for raw in raws:
        raw.unlink(missing_ok=True)
    return summarize(text, top=30)


async def prepare_nexus(base: str) -> tuple[str, str, bytes]:
    """One registered user, read once so that the cache holds it: its id, token and bytes."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        made = await http.post(
            "/api/auth/register",
            json={"email": "reader@example.com", "username": "reader", "password": "pw-" * 6},
        )
        made.raise_for_status()
        user_id, token = made.json()["user"]["id"], made.json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        first = await http.get(f"/api/users/{user_id}", headers=headers)
        first.raise_for_status()
        second = await http.get(f"/api/users/{user_id}", headers=headers)
        if second.content != first.content:
            raise SystemExit("the cached read differs from the first read")
        return user_id, token, second.content


async def seed_bare(data_dir: Path, user_id: str, body: bytes) -> str:
    settings = Settings(AZORA_DATA_DIR=data_dir)
    async with attach_backends(settings) as urls:
        from redis.asyncio import Redis

        redis = Redis.from_url(urls.redis)
        await redis.set(BARE_PREFIX + user_id, body)
        await redis.aclose()
        return urls.redis


def start_nexus(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = clean_env() | {
        "AZORA_DATA_DIR": str(data_dir),
        "AZORA_PORT": str(port),
        "AZORA_JWT_SECRET": SECRET,
        "AZORA_LOG_LEVEL": "WARNING",
    }
    azora = Path(sys.executable).with_name("azora")
    return subprocess.Popen(
        [str(azora), "up", "--workers", "2"], env=env, stdout=subprocess.DEVNULL
    )


def start_bare(port: int, redis_url: str) -> subprocess.Popen[bytes]:
    env = clean_env() | {
        "BARE_SECRET": SECRET,
        "BARE_REDIS_URL": redis_url,
        "BARE_PREFIX": BARE_PREFIX,
    }
    command = [
        sys.executable, "-m", "uvicorn", "bench.bare_read:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "2", "--loop", "uvloop", "--http", "httptools",
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)


def summary(rounds: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "rps": statistics.median(r["rps"] for r in rounds),
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "cpu_us_per_req": statistics.median(r["cpu_us_per_req"] for r in rounds),
        "cores": statistics.median(r["cores"] for r in rounds),
        "preempted_per_s": statistics.median(r["preempted_per_s"] for r in rounds),
        "load1": statistics.median(r["load1"] for r in rounds),
        "non_2xx": sum(int(r["non_2xx"]) for r in rounds),
        "rounds": rounds,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="azora-http-read-") as tmp:
        data_dir = Path(tmp)
        os.chmod(data_dir, 0o755)  # the embedded PostgreSQL runs as its own user
        nexus_port, bare_port = free_port(), free_port()
        nexus = start_nexus(data_dir, nexus_port)
        bare: subprocess.Popen[bytes] | None = None
        try:
            nexus_base = f"http://127.0.0.1:{nexus_port}"
            await wait_ready(nexus_base, nexus)
            user_id, token, body = await prepare_nexus(nexus_base)
            script = data_dir / "auth.lua"
            script.write_text(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
            targets = {"nexus": f"{nexus_base}/api/users/{user_id}"}
            if args.vs_bare:
                redis_url = await seed_bare(data_dir, user_id, body)
                bare = start_bare(bare_port, redis_url)
                bare_base = f"http://127.0.0.1:{bare_port}"
                await wait_ready(bare_base, bare, f"/api/users/{user_id}")
                targets = {"bare": f"{bare_base}/api/users/{user_id}"} | targets
            results: dict[str, list[dict[str, float]]] = {name: [] for name in targets}
            for url in targets.values():
                wrk(url, script, args.connections, WARMUP_S)
            pids = {"nexus": server_pids(nexus.pid, "azora_nexus worker")}
            if bare is not None:
                pids["bare"] = server_pids(bare.pid, "multiprocessing")
            for _ in range(args.rounds):
                for name, url in targets.items():
                    results[name].append(
                        measured(url, script, args.connections, args.seconds, pids[name])
                    )
            figures: dict[str, Any] = {
                "connections": args.connections,
                "seconds": args.seconds,
                "body_bytes": len(body),
                "cpus": os.cpu_count(),
            } | {name: summary(rounds) for name, rounds in results.items()}
            if args.vs_bare:
                figures["ratio"] = figures["nexus"]["rps"] / figures["bare"]["rps"]
            if args.profile:
                report = profile(pids["nexus"][1:], targets["nexus"], script, args)
                (RESULTS / "http_read-profile.txt").write_text(report)
            return figures
        finally:
            if bare is not None:
                stop(bare)
            stop(nexus)


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        f"cached `GET /api/users/{{id}}`, {figures['connections']} connections, "
        f"{figures['seconds']:g} s a round, median of {len(figures['nexus']['rounds'])} rounds",
        "",
        "| target | req/s | p50 ms | p99 ms | server CPU µs/request | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for name in ("bare", "nexus"):
        if name in figures:
            f = figures[name]
            lines.append(
                f"| {name} | {f['rps']:,.0f} | {f['p50_ms']:.2f} | {f['p99_ms']:.2f} "
                f"| {f['cpu_us_per_req']:.0f} | {f['non_2xx']} |"
            )
    if "ratio" in figures:
        cpu = figures["bare"]["cpu_us_per_req"] / figures["nexus"]["cpu_us_per_req"]
        lines += ["", f"Nexus / bare: {figures['ratio']:.2f}x req/s, {cpu:.2f}x by CPU per request"]
    lines += [
        "",
        "rounds in the order run (cores: CPU the serving processes got; preempted: their "
        "involuntary context switches; load: the box's 1-minute load average at the end)",
        "",
        "| target | req/s | p99 ms | cores | preempted/s | load |",
        "|---|---|---|---|---|---|",
    ]
    for index in range(len(figures["nexus"]["rounds"])):
        for name in ("bare", "nexus"):
            if name in figures:
                r = figures[name]["rounds"][index]
                lines.append(
                    f"| {name} | {r['rps']:,.0f} | {r['p99_ms']:.2f} | {r['cores']:.2f} "
                    f"| {r['preempted_per_s']:,.0f} | {r['load1']:.1f} |"
                )
    return "\n".join(lines)


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vs-bare", action="store_true", help="measure the bare anchor too")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--profile", action="store_true", help="py-spy the Nexus workers")
    return parser.parse_args()


def main() -> int:
    args = parse()
    figures = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "http_read.json").write_text(json.dumps(figures, indent=1) + "\n")
    print(markdown(figures))
    if args.profile:
        print((RESULTS / "http_read-profile.txt").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
