"""Every benchmark in one go, and one markdown section for the README.

Run from the repo root: `.venv/bin/python -m bench.report` (all: about 10 minutes), or
`--only fanout`, `--quick` (short runs), `--render` (no runs: the latest JSON results).
Each fan-out workload runs in its own `python -m bench.fanout` process against its own
fresh `azora up`; the cache and ledger benchmarks run when their modules exist. Writes
bench/results/report.md and prints it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.fanout.markdown import machine, ms, table

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"

# label -> python -m bench.fanout arguments (the workloads).
FANOUT = {
    "1000x50": ["--clients", "1000", "--rate", "50", "--seconds", "30"],
    "10000x1": ["--clients", "10000", "--rate", "1", "--seconds", "30", "--procs", "4"],
    "connect-10000": ["--clients", "10000", "--connect-only", "--procs", "4"],
}
QUICK = {  # own labels: a quick run never overwrites a full one
    "quick-1000x50": ["--clients", "1000", "--rate", "50", "--seconds", "10"],
    "quick-connect-2000": ["--clients", "2000", "--connect-only"],
}
# The figures on this machine: (Node.js peer, stock python-socketio, same + gc.freeze).
REFERENCE = {
    "1000x50": ("p50 19 / p99 279 ms, 0 loss", "426 of 1,500 not accepted, p99 2,305 ms",
                "p50 86 / p99 165 ms"),
    "10000x1": ("p50 97 / p99 305 ms", "p50 1,820 / p99 3,197 ms", "p50 446 / p99 647 ms"),
    "connect-10000": ("8.6 s", "16.9 s", "11.3 s"),
    "memory": ("~15 KB", "~48 KB", "~48 KB"),
}  # fmt: skip
# "Most clients at 50 events/s with 0 loss and p99 < 100 ms": these counts, 10 s each,
# smallest first, stopping at the first that fails.
CAPACITY = [100, 250, 500, 750, 1000, 1250, 1500, 1900, 2500]
OTHERS = {
    "cache": ("cache_bench", ["--seconds", "15"], "cache.json"),
    "ledger": ("ledger_bench", ["--seconds", "10"], "ledger.json"),
}


def run_module(module: str, arguments: list[str]) -> bool:
    """`python -m bench.<module> ...` from the repo root; whether it exited 0."""
    command = [sys.executable, "-m", f"bench.{module}", *arguments]
    print("$", " ".join(command[1:]), file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=BENCH.parent, check=False).returncode == 0


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def nexus_cell(label: str, run: dict[str, Any] | None) -> str:
    """This run's figures in the words of the issue's table."""
    if run is None:
        return "not run"
    if label.startswith("connect"):
        connect = run["connect"]
        return f"{connect['wall_s']} s ({connect['clients_per_s']:,} clients/s)"
    delivery = run["delivery"]
    publish, latency = delivery["publish"], delivery["latency_ms"]
    cell = f"p50 {ms(latency.get('p50'))} / p99 {ms(latency.get('p99'))} ms"
    cell += f", {delivery['lost']:,} lost"
    if publish["accepted"] < publish["attempted"]:
        cell += f", {publish['attempted'] - publish['accepted']:,} of {publish['attempted']:,}"
        cell += " not accepted"
    return cell


def passes(run: dict[str, Any] | None) -> bool:
    """Every event accepted and delivered to everyone, p99 under the limit."""
    if run is None:
        return False
    delivery = run["delivery"]
    publish = delivery["publish"]
    p99: float = delivery["latency_ms"].get("p99", float("inf"))
    return publish["accepted"] == publish["attempted"] and delivery["lost"] == 0 and p99 < 100


def find_capacity(extra: list[str]) -> None:
    """Run 50 events/s for 10 s at growing client counts until one fails."""
    for clients in CAPACITY:
        label = f"cap-{clients}"
        arguments = ["--clients", str(clients), "--rate", "50", "--seconds", "10"]
        run_module("fanout", [*arguments, "--label", label, *extra])
        if not passes(load(f"fanout-{label}.json")):
            break


def capacity_cell() -> str:
    """The largest count that passed, and the first that did not."""
    passed = [n for n in CAPACITY if passes(load(f"fanout-cap-{n}.json"))]
    failed = [n for n in CAPACITY if load(f"fanout-cap-{n}.json") and n not in passed]
    if not passed and not failed:
        return "not run"
    cell = f"{max(passed):,}" if passed else f"< {min(failed):,}"
    return cell + (f" ({min(failed):,} fails)" if failed and passed else "")


def comparison(runs: dict[str, dict[str, Any] | None]) -> str:
    """The issue's table with a Nexus column."""
    lines = [
        "| workload | Node.js peer | stock python-socketio | + gc.freeze | Nexus |",
        "|---|---|---|---|---|",
    ]
    names = {
        "1000x50": "1,000 clients x 50 events/s",
        "10000x1": "10,000 clients x 1 event/s",
        "connect-10000": "connect + subscribe, 10,000 clients",
    }
    for label, name in names.items():
        node, stock, frozen = REFERENCE[label]
        lines.append(f"| {name} | {node} | {stock} | {frozen} | {nexus_cell(label, runs[label])} |")
        if label == "1000x50":
            lines.append(
                "| most clients at 50 events/s with 0 loss and p99 < 100 ms | 950 | 450 | 875 | "
                f"{capacity_cell()} |"
            )
    measured = [r for r in runs.values() if r and r["connect"].get("kb_per_socket")]
    # The most sockets give the steadiest figure.
    memory = max(measured, key=lambda r: r["connect"]["connected"], default=None)
    per_socket = f"{memory['connect']['kb_per_socket']} KB" if memory else "not run"
    node, stock, frozen = REFERENCE["memory"]
    lines.append(
        f"| server memory per connected socket | {node} | {stock} | {frozen} | {per_socket} |"
    )
    return "\n".join(lines)


def others_section() -> list[str]:
    lines = []
    cache = load("cache.json")
    if cache:
        lines.append(
            f"- cache ({cache['plan']['clients']} clients, Zipf over {cache['plan']['keys']:,} "
            f"keys, {cache['plan']['write_ratio']:.0%} writes): {cache['ops_per_s']:,} ops/s, "
            f"hit rate {cache['hit_rate']:.1%}, read p50/p99 {cache['read_ms_p50']}/"
            f"{cache['read_ms_p99']} ms, {cache['stale_reads']} stale reads"
        )
    ledger = load("ledger.json")
    if ledger:
        lines.append(
            f"- ledger ({ledger['plan']['clients']} clients, {ledger['plan']['wallets']} wallets):"
            f" {ledger['transfers_per_s']:,} transfers/s, p50/p99 {ledger['latency_ms_p50']}/"
            f"{ledger['latency_ms_p99']} ms, invariant exact: {ledger['invariant_exact']}"
        )
    return lines


def render(labels: list[str]) -> str:
    """The README's benchmark section from the latest results."""
    runs = {label: load(f"fanout-{label}.json") for label in [*FANOUT, *labels]}
    runs |= {f"cap-{n}": load(f"fanout-cap-{n}.json") for n in CAPACITY}
    present = [r for r in runs.values() if r is not None]
    dates = sorted(r["date"] for r in present)
    when = f"{dates[0]} to {dates[-1]}" if dates else "never"
    parts = [f"Measured {when} on {machine()}; load generator on the same machine."]
    nice = sorted({r["options"].get("nice", 0) for r in present})
    if nice != [0]:
        parts.append(
            f"Server, clients and publisher ran at nice {'/'.join(map(str, nice))} (process "
            "and autogroup) ahead of other work on the machine; its share is the `others` CPU."
        )
    parts.append("")
    parts += [comparison(runs), "", "Fan-out runs in detail:", "", table(present), ""]
    others = others_section()
    if others:
        parts += ["Cache and ledger:", "", *others, ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report")
    parser.add_argument("--only", choices=["fanout", "cache", "ledger"], action="append")
    parser.add_argument("--quick", action="store_true", help="short fan-out runs")
    parser.add_argument("--render", action="store_true", help="only render the latest results")
    parser.add_argument("--capacity", action="store_true", help="also search the 50/s capacity")
    parser.add_argument("--nice", type=int, default=0, help="passed to bench.fanout")
    args = parser.parse_args(argv)
    chosen = args.only or ["fanout", "cache", "ledger"]
    workloads = QUICK if args.quick else FANOUT
    if not args.render:
        extra = ["--nice", str(args.nice)] if args.nice else []
        if "fanout" in chosen:
            for label, arguments in workloads.items():
                run_module("fanout", [*arguments, "--label", label, *extra])
            if args.capacity:
                find_capacity(extra)
        for name, (module, arguments, _) in OTHERS.items():
            if name in chosen and (BENCH / f"{module}.py").exists():
                run_module(module, arguments)
    report = render(list(workloads))
    (RESULTS / "report.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
