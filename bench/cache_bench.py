"""Cache benchmark: hit rate, read latency and stale reads under a Zipf workload with writes.

Run: `.venv/bin/python -m bench.cache_bench [--seconds 60] [--clients 32] [--keys 10000]`.
Uses the backends DATABASE_URL / REDIS_URL name, or starts embedded ones in a temporary dir.

Workload (issue 5): 10,000 rows of a scratch table, each cached under its own key; 32
concurrent clients; each operation picks a key from a Zipf distribution (s=1.0) and is a
write with probability 0.1, else a read. A write commits `version + 1` in a transaction and,
after the commit and before it returns, replaces the key's value with a fresh load under
the key's lease (`refill_after_commit`, write-through), or with `--no-refill` only
invalidates it (`invalidate_after_commit`). A read is `read_through` with the database as
loader. Every read is checked against the last committed version: it is stale if it
returns a version older than one whose write had returned before the read started. Before
measuring, every key is read once (`--no-prewarm` starts cold instead: then the run mostly
measures first reads) and the clients run a warm-up. Prints a markdown table and writes
bench/results/cache.json (variants: cache-no-refill.json, cache-cold.json).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import itertools
import json
import os
import platform
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from azora_nexus.backends import start_backends
from azora_nexus.cache import Cache, CacheOptions, keys, open_cache
from azora_nexus.config import Settings
from azora_nexus.database.engine import Database, open_database
from azora_nexus.sync import invalidate_after_commit, read_through, refill_after_commit

RESULTS = Path(__file__).with_name("results")
TABLE = "cache_bench_items"


@dataclass(frozen=True)
class Plan:
    seconds: float = 60.0
    warmup_s: float = 5.0
    clients: int = 32
    keys: int = 10_000
    zipf_s: float = 1.0
    write_ratio: float = 0.1
    refill: bool = True
    prewarm: bool = True


@dataclass
class Tally:
    """What the clients saw while measuring."""

    measuring: bool = False
    reads: int = 0
    writes: int = 0
    stale: int = 0
    read_s: list[float] = field(default_factory=list)
    write_s: list[float] = field(default_factory=list)


class Zipf:
    """Ranks 1..n drawn with probability proportional to 1 / rank**s, mapped to shuffled ids."""

    def __init__(self, n: int, s: float, rng: random.Random) -> None:
        self.cumulative = list(itertools.accumulate(1 / rank**s for rank in range(1, n + 1)))
        self.ids = list(range(n))
        rng.shuffle(self.ids)  # the hot rows are spread over the table
        self.rng = rng

    def draw(self) -> int:
        point = self.rng.random() * self.cumulative[-1]
        return self.ids[bisect.bisect_left(self.cumulative, point)]


def item_key(row_id: int) -> keys.CacheKey:
    return keys.key("bench", "item", row_id)


async def create_table(db: Database, rows: int) -> None:
    async with db.transaction() as session:
        await session.execute(text(f"DROP TABLE IF EXISTS {TABLE}"))
        await session.execute(
            text(f"CREATE TABLE {TABLE} (id int PRIMARY KEY, version bigint NOT NULL, body text)")
        )
        await session.execute(
            text(
                f"INSERT INTO {TABLE} SELECT g, 1, repeat(md5(g::text), 6) "
                "FROM generate_series(0, :n - 1) g"
            ),
            {"n": rows},
        )


async def load_item(db: Database, row_id: int) -> dict[str, Any]:
    """The row as an API would answer it, read in its own transaction."""
    async with db.sessions() as session:
        row = (
            await session.execute(
                text(f"SELECT id, version, body FROM {TABLE} WHERE id = :id"), {"id": row_id}
            )
        ).one()
    return {"id": row.id, "version": row.version, "body": row.body}


async def write_item(db: Database, cache: Cache, row_id: int, refill: bool) -> int:
    """Commit version + 1; the key is invalidated before this returns."""
    key = item_key(row_id)
    async with db.transaction() as session:
        version = await session.scalar(
            text(f"UPDATE {TABLE} SET version = version + 1 WHERE id = :id RETURNING version"),
            {"id": row_id},
        )
        if refill:
            refill_after_commit(session, key, lambda: load_item(db, row_id), cache=cache)
        else:
            invalidate_after_commit(session, [key], cache=cache)
    return int(version)


@dataclass
class Run:
    """What every client shares."""

    db: Database
    cache: Cache
    plan: Plan
    zipf: Zipf
    committed: list[int]  # per row: the newest version whose write has returned
    tally: Tally = field(default_factory=Tally)
    stop: asyncio.Event = field(default_factory=asyncio.Event)


async def client(run: Run) -> None:
    rng, tally = run.zipf.rng, run.tally
    while not run.stop.is_set():
        row_id = run.zipf.draw()
        started = time.perf_counter()
        if rng.random() < run.plan.write_ratio:
            version = await write_item(run.db, run.cache, row_id, run.plan.refill)
            run.committed[row_id] = max(run.committed[row_id], version)
            if tally.measuring:
                tally.writes += 1
                tally.write_s.append(time.perf_counter() - started)
            continue
        floor = run.committed[row_id]  # every write that returned before this read began
        load = functools.partial(load_item, run.db, row_id)
        item = await read_through(run.cache, item_key(row_id), load)
        if tally.measuring:
            tally.reads += 1
            tally.read_s.append(time.perf_counter() - started)
            tally.stale += item["version"] < floor


async def prewarm(run: Run, concurrency: int = 32) -> None:
    """Read every key once, so the measurement sees a warm cache, not a cold start."""
    ids = iter(range(run.plan.keys))

    async def worker() -> None:
        for row_id in ids:
            load = functools.partial(load_item, run.db, row_id)
            await read_through(run.cache, item_key(row_id), load)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def percentile_ms(samples: Sequence[float], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] * 1000, 3)


async def bench(database_url: str, redis_url: str, plan: Plan) -> dict[str, Any]:
    async with (
        open_database(database_url) as db,
        open_cache(redis_url, CacheOptions()) as cache,
    ):
        await create_table(db, plan.keys)
        run = Run(db, cache, plan, Zipf(plan.keys, plan.zipf_s, random.Random(5)), [1] * plan.keys)
        started = time.perf_counter()
        if plan.prewarm:
            await prewarm(run)
        prewarm_s = time.perf_counter() - started
        clients = [asyncio.create_task(client(run)) for _ in range(plan.clients)]
        await asyncio.sleep(plan.warmup_s)
        before = dict(cache.stats.as_dict())
        run.tally.measuring = True
        await asyncio.sleep(plan.seconds)
        run.tally.measuring = False
        after = dict(cache.stats.as_dict())
        run.stop.set()
        await asyncio.gather(*clients)
    tally = run.tally
    counts = {k: after[k] - before[k] for k in after if not k.endswith("Rate")}
    answered = counts["hits"] + counts["waitHits"] + counts["misses"]
    return {
        "reads": tally.reads,
        "writes": tally.writes,
        "ops_per_s": round((tally.reads + tally.writes) / plan.seconds, 1),
        # Answered by Redis, at once or after waiting for a refill: no database load of its own.
        "hit_rate": round((counts["hits"] + counts["waitHits"]) / answered, 4) if answered else 0,
        # Found by the first lookup.
        "first_lookup_hit_rate": round(counts["hits"] / answered, 4) if answered else 0,
        "read_ms_p50": percentile_ms(tally.read_s, 0.5),
        "read_ms_p99": percentile_ms(tally.read_s, 0.99),
        "write_ms_p50": percentile_ms(tally.write_s, 0.5),
        "write_ms_p99": percentile_ms(tally.write_s, 0.99),
        "stale_reads": tally.stale,
        "prewarm_s": round(prewarm_s, 1),
        "cache": counts,
    }


async def main(plan: Plan) -> dict[str, Any]:
    database_url, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if database_url and redis_url:
        return await bench(database_url, redis_url, plan)
    with tempfile.TemporaryDirectory(prefix="azora-bench-") as data_dir:
        os.chmod(data_dir, 0o755)  # the embedded PostgreSQL runs as its own user
        async with start_backends(Settings(AZORA_DATA_DIR=Path(data_dir))) as urls:
            return await bench(urls.database, urls.redis, plan)


def markdown(plan: Plan, figures: dict[str, Any]) -> str:
    rows = [
        (
            "workload",
            f"{plan.keys} keys, Zipf s={plan.zipf_s}, {plan.write_ratio:.0%} writes, "
            f"{plan.clients} clients, {plan.seconds:g} s (+{plan.warmup_s:g} s warm-up), "
            f"refill after write: {'on' if plan.refill else 'off'}, "
            f"prewarm: {'every key read once' if plan.prewarm else 'off'}",
        ),
        ("reads / writes", f"{figures['reads']} / {figures['writes']}"),
        ("operations/s", f"{figures['ops_per_s']}"),
        ("hit rate (answered by Redis)", f"{figures['hit_rate']:.2%}"),
        ("found at first lookup", f"{figures['first_lookup_hit_rate']:.2%}"),
        ("waited for a refill", f"{figures['cache']['waitHits']}"),
        ("read p50 / p99", f"{figures['read_ms_p50']} ms / {figures['read_ms_p99']} ms"),
        ("write p50 / p99", f"{figures['write_ms_p50']} ms / {figures['write_ms_p99']} ms"),
        ("stale reads", f"{figures['stale_reads']}"),
        ("database loads", f"{figures['cache']['loads']}"),
        ("fills refused (raced a write)", f"{figures['cache']['fillsRejected']}"),
        ("refills by writers", f"{figures['cache']['refills']}"),
    ]
    lines = ["| measure | value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]
    return "\n".join(lines)


def parse() -> Plan:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=Plan.seconds)
    parser.add_argument("--warmup", type=float, default=Plan.warmup_s)
    parser.add_argument("--clients", type=int, default=Plan.clients)
    parser.add_argument("--keys", type=int, default=Plan.keys)
    parser.add_argument("--zipf", type=float, default=Plan.zipf_s)
    parser.add_argument("--write-ratio", type=float, default=Plan.write_ratio)
    parser.add_argument(
        "--no-refill", action="store_true", help="only invalidate after a write (no reload)"
    )
    parser.add_argument("--no-prewarm", action="store_true", help="start from a cold cache")
    args = parser.parse_args()
    return Plan(
        args.seconds,
        args.warmup,
        args.clients,
        args.keys,
        args.zipf,
        args.write_ratio,
        not args.no_refill,
        not args.no_prewarm,
    )


if __name__ == "__main__":
    plan = parse()
    figures = asyncio.run(main(plan))
    report = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "plan": asdict(plan),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        **figures,
    }
    print(markdown(plan, figures))
    RESULTS.mkdir(exist_ok=True)
    variant = "".join(["" if plan.refill else "-no-refill", "" if plan.prewarm else "-cold"])
    name = f"cache{variant}.json"
    (RESULTS / name).write_text(json.dumps(report, indent=2) + "\n")
