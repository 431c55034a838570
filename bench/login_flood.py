"""A real user's sign-in latency while 200 registrations arrive at once (issue 15, item 4).

Run: `.venv/bin/python -m bench.login_flood [--flood 200] [--label after]`. Starts `azora up`
on a fresh data dir (trusting 127.0.0.1 as a proxy, so each registration can come from its
own forwarded address or all from one), registers one user, times its sign-in idle, then
during each flood: every registration sent at once, and the user signing in again and
again until the flood is answered. Prints the figures and adds them to
bench/results/login_flood.json under `--label`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from azora_nexus.backends.process import free_port

RESULTS = Path(__file__).with_name("results") / "login_flood.json"
USER = {"email": "real@example.com", "username": "real_user", "password": "a long passphrase"}


def start_node(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MONGODB_URI")
    }
    env |= {
        "AZORA_DATA_DIR": str(data_dir),
        "AZORA_PORT": str(port),
        "AZORA_TRUSTED_PROXIES": "127.0.0.1",
    }
    return subprocess.Popen(
        [str(Path(sys.executable).with_name("azora")), "up", "--workers", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=Path(tempfile.gettempdir(), "azora-login-flood.log").open("wb"),
    )


async def wait_healthy(http: httpx.AsyncClient, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"azora up exited before it was healthy (rc {process.returncode})")
        try:
            if (await http.get("/health")).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("azora up was not healthy within 300 s")


async def sign_in(http: httpx.AsyncClient) -> tuple[float, int | str]:
    """Seconds to the answer, and its status."""
    started = time.perf_counter()
    try:
        response = await http.post(
            "/api/auth/login",
            json={"email": USER["email"], "password": USER["password"]},
            headers={"X-Forwarded-For": "198.51.100.1"},
        )
    except httpx.HTTPError as exc:  # no answer within the client's timeout (120 s)
        return time.perf_counter() - started, type(exc).__name__
    return time.perf_counter() - started, response.status_code


async def flood(
    http: httpx.AsyncClient, size: int, tag: str, *, one_address: bool
) -> dict[str, Any]:
    """`size` registrations at once; the user's sign-in latencies meanwhile."""

    async def register(n: int) -> int | str:
        address = "203.0.113.7" if one_address else f"10.{n // 250}.{n % 250}.1"
        try:
            response = await http.post(
                "/api/auth/register",
                json={
                    "email": f"{tag}{n}@example.com",
                    "username": f"{tag}user{n}",
                    "password": "x" * 12,
                },
                headers={"X-Forwarded-For": address},
            )
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return response.status_code

    started = time.perf_counter()
    registrations = asyncio.gather(*(register(n) for n in range(size)))
    await asyncio.sleep(0.2)  # the flood is in
    answers = []
    while not registrations.done():
        answers.append(await sign_in(http))
    statuses = Counter(await registrations)
    latencies = [seconds for seconds, _ in answers]
    return {
        "flood_s": round(time.perf_counter() - started, 2),
        "registrations": {str(k): v for k, v in sorted(statuses.items(), key=str)},
        "login_during_s": {
            "count": len(latencies),
            "median": round(statistics.median(latencies), 3),
            "max": round(max(latencies), 3),
            "statuses": dict(Counter(str(status) for _, status in answers)),
        },
    }


async def measure(size: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="azora-flood-") as tmp:
        # The embedded PostgreSQL runs as its own user, who must be able to enter the dir.
        os.chmod(tmp, 0o711)
        port = free_port()
        process = start_node(Path(tmp) / "data", port)
        limits = httpx.Limits(max_connections=size + 10)
        try:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=120, limits=limits
            ) as http:
                await wait_healthy(http, process)
                registered = await http.post("/api/auth/register", json=USER)
                assert registered.status_code == 201, registered.text
                idle = [(await sign_in(http))[0] for _ in range(5)]
                return {
                    "login_idle_s": round(statistics.median(idle), 3),
                    "flood_from_many_addresses": await flood(http, size, "m", one_address=False),
                    "flood_from_one_address": await flood(http, size, "o", one_address=True),
                }
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flood", type=int, default=200)
    parser.add_argument("--label", default="current")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.flood))
    print(json.dumps(figures, indent=2))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[args.label] = {"flood": args.flood, **figures}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
