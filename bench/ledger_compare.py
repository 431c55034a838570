"""pgledger, Nexus in-process and Nexus over HTTP, side by side in one run (issue 17).

Run: `python -m bench.ledger_bench --vs-pgledger [--pgledger PATH] [--seconds 10]
[--profile]`. On one set of embedded servers (or those DATABASE_URL, REDIS_URL and
MONGODB_URI name), one after the other with a pause between:

1. pgledger (bench/pgledger.py: its SQL fetched at run time, never committed here) in a
   database of its own: 32 asyncpg clients, 100 accounts, Zipf s=1;
2. Nexus in-process: 32 clients calling `ledger.transfers.transfer` (group-committed, as
   a node does), 20 funded wallets, Zipf s=1, a fresh idempotency key each, in a database
   of its own (no relay runs in-process: its outbox rows must not be the next run's work);
3. Nexus over HTTP: `azora serve` loaded by wrk, 32 connections,
   `POST /api/wallets/transfer` on 20 other funded wallets, Zipf s=1, a fresh key each.

The ledger invariant is checked exactly after every run (and pgledger's books after its
own). Each run's CPU per transfer is given for its clients (the node, over HTTP) and for
each server: PostgreSQL, Redis, and MongoDB (the node's archiver writes every event there).
With `--profile`, py-spy samples the HTTP node while it serves: where a transfer's CPU goes.
Prints a table and writes bench/results/ledger_vs_pgledger.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import uvloop
from sqlalchemy.engine import make_url

from azora_nexus.backends import BackendUrls, start_backends
from azora_nexus.config import Settings
from azora_nexus.database.migrate import upgrade
from azora_nexus.events.relay import asyncpg_dsn
from bench import ledger_http, pgledger
from bench.fanout.profile import Profiler, is_idle, is_loop_thread, read_stacks
from bench.ledger_bench import (
    RESULTS,
    Plan,
    bench,
    check,
    cpu_figures,
    open_db,
    sample_server_cpu,
    seed,
)

IN_PROCESS_DATABASE = "nexus_in_process"


@dataclass(frozen=True)
class Options:
    pgledger: str | None
    seconds: float
    clients: int
    connections: int
    wallets: int
    pgledger_accounts: int
    http_workers: int
    pause_s: float
    profile: bool


def percentiles(latencies_s: list[float], seconds: float) -> dict[str, Any]:
    ordered = sorted(latencies_s)
    return {
        "transfers": len(ordered),
        "transfers_per_s": round(len(ordered) / seconds, 1),
        "latency_ms_p50": round(statistics.median(ordered) * 1000, 2),
        "latency_ms_p99": round(ordered[int(len(ordered) * 0.99)] * 1000, 2),
    }


def tree_cpu_s(pid: int) -> float:
    """CPU seconds so far of `pid` and its children (a node and its workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for member in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = member.cpu_times()
            total += times.user + times.system
    return total


async def run_pgledger(urls: BackendUrls, options: Options) -> dict[str, Any]:
    source = pgledger.locate(options.pgledger)
    dsn, ids = await pgledger.prepare(asyncpg_dsn(urls.database), source, options.pgledger_accounts)
    done = asyncio.Event()
    sampler = asyncio.create_task(
        sample_server_cpu((urls.database, urls.redis, urls.mongodb), 0, done)
    )
    await asyncio.sleep(0.3)  # the sampler's baseline
    # This thread's CPU: the loop running the asyncpg clients, not the sampler's thread.
    cpu_before = time.thread_time()
    latencies = await pgledger.run(dsn, ids, options.clients, options.seconds)
    clients_s = time.thread_time() - cpu_before
    done.set()
    servers_s = await sampler
    books = await pgledger.check(dsn, len(latencies))
    origin = {"pgledger_source": source.origin, "pgledger_revision": source.revision}
    cpu = cpu_figures(len(latencies), clients_s, servers_s)
    return percentiles(latencies, options.seconds) | cpu | books | origin


async def own_database(urls: BackendUrls, name: str) -> str:
    """A fresh, migrated database `name` on the same server; its URL. The in-process run
    writes there: its outbox rows (no relay runs in-process) would otherwise be the HTTP
    node's to publish and archive while it is being measured."""
    admin = await asyncpg.connect(asyncpg_dsn(urls.database))
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    url = make_url(urls.database).set(database=name).render_as_string(hide_password=False)
    await upgrade(url)
    return url


async def run_in_process(urls: BackendUrls, options: Options) -> dict[str, Any]:
    plan = Plan(
        seconds=options.seconds,
        clients=options.clients,
        wallets=options.wallets,
        hot=options.wallets,
        processes=1,
        pre_ping=False,  # as a node's engine (database/engine.py)
    )
    database = await own_database(urls, IN_PROCESS_DATABASE)
    return await bench((database, urls.redis), plan)


async def run_http(urls: BackendUrls, options: Options) -> dict[str, Any]:
    async with open_db(urls.database, urls.redis, pool_size=4) as db:
        wallets = await seed(db, options.wallets)
    done = asyncio.Event()
    with ledger_http.served_node(urls, options.http_workers, {}) as (url, secret):
        node = ledger_http.node_pid(url)
        sampler = asyncio.create_task(
            sample_server_cpu((urls.database, urls.redis, urls.mongodb), 0, done)
        )
        await asyncio.sleep(0.3)  # the sampler's baseline
        node_before = tree_cpu_s(node)
        profile = RESULTS / "ledger_http_profile.raw"
        if options.profile:
            duration = max(1.0, options.seconds - 2)
            with Profiler(ledger_http.node_pid(url), duration, profile, native=False):
                figures = await asyncio.to_thread(
                    ledger_http.load, url, secret, wallets, options.connections, options.seconds
                )
            if profile.exists():
                figures["profile"] = str(profile.with_suffix(".txt"))
                with profile.with_suffix(".txt").open("a") as summary:
                    summary.write(by_package(profile.read_text()))
        else:
            figures = await asyncio.to_thread(
                ledger_http.load, url, secret, wallets, options.connections, options.seconds
            )
        node_s = tree_cpu_s(node) - node_before
        done.set()
        servers_s = await sampler
    async with open_db(urls.database, urls.redis, pool_size=4) as db:
        books = await check(db, wallets)
    answered = figures["requests"] - figures["non_2xx"]
    # wrk stops counting at the end with requests in flight: those may have posted.
    if not answered <= books["transfers_in_ledger"] <= answered + options.connections:
        raise SystemExit(f"HTTP: {answered} answered 2xx, {books['transfers_in_ledger']} posted")
    return {
        "transfers": figures["requests"],
        "transfers_per_s": figures["transfers_per_s"],
        "latency_ms_p50": figures["p50_us"] / 1000,
        "latency_ms_p99": figures["p99_us"] / 1000,
        "non_2xx": figures["non_2xx"],
        "socket_errors": sum(figures[k] for k in ("connect", "read", "write", "timeout")),
        "http_workers": options.http_workers,
        "connections": options.connections,
        # The node's processes count as the clients here (wrk's own CPU is left out).
        **cpu_figures(figures["requests"], node_s, servers_s),
        **{k: v for k, v in figures.items() if k == "profile"},
        **books,
    }


def _package(frame: str) -> str:
    """The package of a py-spy frame `function (package/module.py:line)`."""
    path = frame.rpartition("(")[2].rstrip(")")
    parts = path.split("/")
    if parts[0] == "azora_nexus" and len(parts) > 1:
        return "azora_nexus/" + parts[1].split(".py", 1)[0]
    if len(parts) == 1:  # a module of its own (`contextlib.py:210`) or a frozen one
        return "stdlib: " + parts[0].split(".py", 1)[0]
    return parts[0]


def by_package(raw: str) -> str:
    """The event loop's busy samples by the package of the frame they were in (self time)."""
    stacks = read_stacks(raw)
    busy = Counter({f: n for f, n in stacks.items() if is_loop_thread(f) and not is_idle(f)})
    total = sum(busy.values()) or 1
    packages: Counter[str] = Counter()
    for frames, count in busy.items():
        packages[_package(frames[-1])] += count
    lines = [
        "",
        "self samples by package (share of the loop's busy samples; `asyncio` with",
        "Runner.run as its leaf is uvloop's own C code: socket I/O and callbacks):",
    ]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in packages.most_common(20)]
    return "\n".join(lines) + "\n"


def servers(by_server: dict[str, float]) -> str:
    order = ("postgresql", "redis", "mongodb")
    return " / ".join(f"{by_server.get(name, 0.0):.2f}" for name in order)


def table(results: dict[str, dict[str, Any]]) -> str:
    anchor = results["pgledger"]["transfers_per_s"]
    rows = [
        "| run | transfers/s | x pgledger | p50 ms | p99 ms | non-2xx | CPU ms/transfer"
        " (Python + servers: PostgreSQL/Redis/MongoDB) | ceiling on 2 idle cores | invariant |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, figures in results.items():
        rate = figures["transfers_per_s"]
        rows.append(
            f"| {name} | {rate:,.0f} | {rate / anchor:.2f} | {figures['latency_ms_p50']:.1f} "
            f"| {figures['latency_ms_p99']:.1f} | {figures.get('non_2xx', '-')} "
            f"| {figures['cpu_ms_per_transfer_clients']:.2f} + "
            f"({servers(figures['cpu_ms_per_transfer_by_server'])}) "
            f"| {int(figures['ceiling_transfers_per_s_on_2_idle_cores']):,} "
            f"| {'exact' if figures['invariant_exact'] else 'BROKEN'} |"
        )
    return "\n".join(rows)


async def compare(urls: BackendUrls, options: Options) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    results["pgledger"] = await run_pgledger(urls, options)
    await asyncio.sleep(options.pause_s)
    results["nexus in-process"] = await run_in_process(urls, options)
    await asyncio.sleep(options.pause_s)
    results["nexus over HTTP"] = await run_http(urls, options)
    return results


async def run(options: Options) -> dict[str, dict[str, Any]]:
    named = [os.environ.get(k) for k in ("DATABASE_URL", "REDIS_URL", "MONGODB_URI")]
    if all(named):
        urls = BackendUrls(*(url or "" for url in named))
        await upgrade(urls.database)
        return await compare(urls, options)
    with tempfile.TemporaryDirectory(prefix="azora-bench-") as data_dir:
        os.chmod(data_dir, 0o755)  # the embedded PostgreSQL runs as its own user
        async with start_backends(Settings(AZORA_DATA_DIR=Path(data_dir))) as urls:
            await upgrade(urls.database)
            return await compare(urls, options)


def parse() -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--vs-pgledger", action="store_true", help="(this comparison)")
    parser.add_argument("--pgledger", help="a pgledger checkout or bare git dir (else: git clone)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=32, help="pgledger and in-process")
    parser.add_argument("--connections", type=int, default=32, help="HTTP (wrk)")
    parser.add_argument("--wallets", type=int, default=20, help="Nexus's funded wallets")
    parser.add_argument("--pgledger-accounts", type=int, default=100)
    parser.add_argument("--http-workers", type=int, default=1)
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between runs")
    parser.add_argument("--profile", action="store_true", help="py-spy on the HTTP node")
    args, _ = parser.parse_known_args()
    return Options(
        pgledger=args.pgledger,
        seconds=args.seconds,
        clients=args.clients,
        connections=args.connections,
        wallets=args.wallets,
        pgledger_accounts=args.pgledger_accounts,
        http_workers=args.http_workers,
        pause_s=args.pause,
        profile=args.profile,
    )


def main() -> None:
    options = parse()
    started = time.time()
    # uvloop, as a node and the in-process clients run: pgledger's clients get the same.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        results = runner.run(run(options))
    report = {
        "options": options.__dict__,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average_1m_after": round(os.getloadavg()[0], 2),
        "started": started,
        "results": results,
    }
    print(json.dumps(report, indent=2))
    print()
    print(table(results))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "ledger_vs_pgledger.json").write_text(json.dumps(report, indent=2) + "\n")
    (RESULTS / "ledger_vs_pgledger.md").write_text(table(results) + "\n")
