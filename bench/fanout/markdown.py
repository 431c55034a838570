"""The markdown table of fan-out runs (one row per run) and the machine line above it."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from typing import Any

import psutil

HEADER = (
    "| workload | connect+subscribe | published / accepted | loss | dup | "
    "latency p50 / p95 / p99 / max (ms) | CPU % node / backends / clients / others | "
    "node CPU per delivery | node RSS | per socket |"
)
RULE = "|---|---|---|---|---|---|---|---|---|---|"


def machine() -> str:
    """CPU count, model, memory and Python: what the figures depend on."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next(
                (
                    line.split(":", 1)[1].strip()
                    for line in cpuinfo
                    if line.startswith("model name")
                ),
                model,
            )
    except OSError:
        pass
    memory_gb = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {memory_gb:.0f} GB, "
        f"Python {sys.version.split()[0]}, {platform.system()} {platform.release()}"
    )


def ms(value: object) -> str:
    """A millisecond figure as people read it: 0.86, 19.3, 1,820."""
    if not isinstance(value, int | float):
        return "-"
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def workload(run: dict[str, Any]) -> str:
    options = run["options"]
    if options["connect_only"]:
        return f"connect {options['clients']:,} clients"
    return f"{options['clients']:,} clients x {options['rate']:g}/s x {options['seconds']:g} s"


def row(run: dict[str, Any]) -> str:
    """One table row for a run's figures."""
    connect = run["connect"]
    cells = [
        workload(run),
        f"{connect['connected']:,}/{connect['asked']:,} in {connect['wall_s']} s "
        f"({connect['clients_per_s']}/s)",
    ]
    delivery = run.get("delivery")
    if delivery is None:
        during_connect = {
            "cpu_percent_publishing": connect.get("cpu_percent", {}),
            "machine_percent_publishing": connect.get("machine_percent", {}),
        }
        cells += ["-", "-", "-", "-", server_cpu(during_connect), "-"]
    else:
        publish = delivery["publish"]
        latency = delivery["latency_ms"]
        cells += [
            f"{publish['attempted']:,} / {publish['accepted']:,}",
            f"{delivery['lost']:,} ({delivery['loss_percent']}%)",
            f"{delivery['duplicates']:,}",
            " / ".join(ms(latency.get(k)) for k in ("p50", "p95", "p99", "max")),
            server_cpu(run.get("server", {})),
            f"{run.get('server', {}).get('nexus_cpu_us_per_delivery', '-')} µs",
        ]
    cells.append(f"{connect.get('nexus_rss_mb_connected', '-')} MB")
    cells.append(f"{connect.get('kb_per_socket', '-')} KB")
    return "| " + " | ".join(cells) + " |"


def server_cpu(usage: dict[str, Any]) -> str:
    """CPU while publishing, in % of one core: the node, its backends, the bench, the rest."""
    percent = usage.get("cpu_percent_publishing", {})
    machine = usage.get("machine_percent_publishing", {})
    backends = sum(v for k, v in percent.items() if k != "nexus")
    cells = [percent.get("nexus"), backends if percent else None]
    cells += [machine.get("bench_clients"), machine.get("others")]
    return " / ".join("-" if c is None else f"{c:.0f}" for c in cells)


def table(runs: list[dict[str, Any]]) -> str:
    """The header, the rule and one row per run."""
    return "\n".join([HEADER, RULE, *(row(run) for run in runs)])
