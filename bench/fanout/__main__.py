"""Fan-out benchmark: N Socket.IO clients, events published at R/s for D s, loss and latency.

Run from the repo root (`pip install -e '.[bench]'` first):

    .venv/bin/python -m bench.fanout --clients 1000 --rate 50 --seconds 30
    .venv/bin/python -m bench.fanout --clients 10000 --connect-only
    .venv/bin/python -m bench.fanout --clients 1000 --rate 50 --seconds 30 --profile 20

It starts `azora up` on a temporary data dir and a free port (or uses `--url` and
`--secret`), writes bench/results/fanout-<label>.json and .md, and prints the table row.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import uvloop

from bench.fanout.markdown import machine, table, today
from bench.fanout.run import FanoutOptions, run_fanout
from bench.fanout.server import NexusUnderTest, given_nexus, started_nexus

RESULTS = Path(__file__).resolve().parent.parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.fanout", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured publishing time")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up events")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes per process")
    parser.add_argument("--connect-only", action="store_true", help="connect and subscribe only")
    parser.add_argument("--event-type", default="marketplace.job.posted")
    parser.add_argument("--profile", type=float, default=0.0, help="py-spy seconds (0: none)")
    parser.add_argument("--no-native", action="store_true", help="py-spy without --native")
    parser.add_argument(
        "--nice", type=int, default=0, help="priority of server and clients (-5: ahead of others)"
    )
    parser.add_argument("--label", help="results file name (default: derived from the workload)")
    parser.add_argument("--url", help="a running server instead of starting `azora up`")
    parser.add_argument("--secret", help="its AZORA_JWT_SECRET (with --url)")
    parser.add_argument("--pid", type=int, help="its process id, to measure CPU and memory")
    parser.add_argument("--up-arg", action="append", default=[], help="extra `azora up` argument")
    parser.add_argument("--server-env", action="append", default=[], help="KEY=VALUE for it")
    return parser.parse_args(argv)


def label_of(args: argparse.Namespace) -> str:
    if args.label:
        return str(args.label)
    if args.connect_only:
        return f"connect-{args.clients}"
    return f"{args.clients}x{args.rate:g}"


def options_of(args: argparse.Namespace, label: str) -> FanoutOptions:
    return FanoutOptions(
        clients=args.clients,
        rate=args.rate,
        seconds=args.seconds,
        warmup_s=args.warmup,
        procs=args.procs,
        concurrency=args.concurrency,
        event_type=args.event_type,
        connect_only=args.connect_only,
        profile_s=args.profile,
        profile_native=not args.no_native,
        profile_path=RESULTS / f"profile-{label}.raw" if args.profile else None,
        nice=args.nice,
    )


def server_of(args: argparse.Namespace, label: str) -> AbstractContextManager[NexusUnderTest]:
    if args.url:
        if not args.secret:
            raise SystemExit("--url needs --secret (the server's AZORA_JWT_SECRET)")
        return given_nexus(args.url, args.secret, args.pid)
    extra_env = dict(item.split("=", 1) for item in args.server_env)
    return started_nexus(
        up_args=args.up_arg, extra_env=extra_env, keep_log=RESULTS / f"server-{label}.log.tmp"
    )


def raise_file_limit() -> None:
    """Each socket is a descriptor here and in the server (which inherits the limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def run_one(
    options: FanoutOptions, server_context: AbstractContextManager[NexusUnderTest]
) -> dict[str, Any]:
    """Start (or reach) the server, run the workload on it, and return the whole record."""
    raise_file_limit()
    with server_context as server:
        figures = uvloop.run(run_fanout(options, server))
    settings = dataclasses.asdict(options) | {"profile_path": str(options.profile_path or "")}
    return {"date": today(), "machine": machine(), "options": settings} | figures


def save(label: str, record: dict[str, Any]) -> Path:
    """bench/results/fanout-<label>.json and .md."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"fanout-{label}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    markdown = f"{record['machine']}, {record['date']}\n\n{table([record])}\n"
    path.with_suffix(".md").write_text(markdown)
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    label = label_of(args)
    record = run_one(options_of(args, label), server_of(args, label))
    path = save(label, record)
    print(table([record]))
    for key in ("warmup", "delivery", "server"):
        if key in record:
            print(f"{key}: {json.dumps(record[key])[:1500]}", file=sys.stderr)
    print(f"connect: {json.dumps(record['connect'])}", file=sys.stderr)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
