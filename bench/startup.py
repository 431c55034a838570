"""Start-up figures: each embedded backend's first start, restart and stop, and `azora up`.

Run: `.venv/bin/python -m bench.startup [--runs 3]`. Prints a markdown table and writes
bench/results/startup.json. Each run uses a fresh data dir (first start includes initdb).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from azora_nexus.backends.launcher import embedded_servers
from azora_nexus.backends.process import ChildServer, free_port
from azora_nexus.config import Settings

RESULTS = Path(__file__).with_name("results")


async def time_backend(server_for: type[ChildServer], data_dir: Path) -> dict[str, float]:
    """Seconds to a ready server on a fresh dir, to stop it, and to a ready restart."""
    server = server_for(data_dir)
    started = time.perf_counter()
    await server.start()
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    await server.stop()
    stop_s = time.perf_counter() - started
    again = server_for(data_dir)
    started = time.perf_counter()
    await again.start()
    restart_s = time.perf_counter() - started
    await again.stop()
    return {"first_start_s": first_s, "stop_s": stop_s, "restart_s": restart_s}


def time_up(data_dir: Path) -> dict[str, float]:
    """Seconds from `azora up` to /health 200, and from SIGTERM to exit, twice."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "MONGODB_URI")
    }
    figures: dict[str, float] = {}
    for label in ("first", "restart"):
        port = free_port()
        env |= {"AZORA_DATA_DIR": str(data_dir), "AZORA_PORT": str(port)}
        started = time.perf_counter()
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("azora")), "up"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit("azora up exited before it was healthy") from None
                time.sleep(0.02)
        figures[f"up_{label}_to_healthy_s"] = time.perf_counter() - started
        started = time.perf_counter()
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        figures[f"up_{label}_stop_s"] = time.perf_counter() - started
    return figures


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="azora-bench-") as root:
        os.chmod(root, 0o755)
        names = embedded_servers(Settings(AZORA_DATA_DIR=Path(root))).items()
        for name, server in names:
            runs = [
                await time_backend(type(server), Path(root) / f"{name}-{i}")
                for i in range(args.runs)
            ]
            results[name] = median_of(runs)
        up_runs = [time_up(Path(root) / f"up-{i}") for i in range(args.runs)]
        results["azora up"] = median_of(up_runs)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(f"median of {args.runs} runs; {machine}\n")
    print("| what | first start (s) | restart (s) | stop (s) |\n|---|---|---|---|")
    for name in ("postgres", "redis", "mongo"):
        r = results[name]
        print(f"| {name} | {r['first_start_s']} | {r['restart_s']} | {r['stop_s']} |")
    u = results["azora up"]
    print(
        f"| `azora up` to /health 200 | {u['up_first_to_healthy_s']} | "
        f"{u['up_restart_to_healthy_s']} | {u['up_restart_stop_s']} |"
    )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "startup.json").write_text(
        json.dumps(
            {
                "machine": machine,
                "runs": args.runs,
                "date": time.strftime("%Y-%m-%d"),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
