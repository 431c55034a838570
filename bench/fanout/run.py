"""One fan-out run: connect N clients, warm up, publish at R/s for D s, drain, and count."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import AbstractContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from azora_nexus.auth.tokens import Role, issue_token
from bench.fanout.pool import ClientPool, plans_for
from bench.fanout.profile import Profiler
from bench.fanout.publisher import Publication, http_client, publish_paced
from bench.fanout.results import connect_figures, delivery_figures
from bench.fanout.server import NexusUnderTest
from bench.fanout.usage import (
    TreeSample,
    TreeSampler,
    cpu_percent,
    machine_percent,
    renice,
    sample_machine,
    sample_tree,
)


@dataclass(frozen=True)
class FanoutOptions:
    """The workload and how to run it."""

    clients: int = 1000
    rate: float = 50.0
    seconds: float = 30.0
    warmup_s: float = 3.0
    procs: int = 2
    concurrency: int = 100  # handshakes in flight per client process
    event_type: str = "marketplace.job.posted"
    drain_s: float = 15.0  # the longest wait for stragglers after the last POST
    quiet_s: float = 3.0  # stop draining after this long without a new delivery
    connect_only: bool = False
    idle_s: float = 3.0  # with every socket connected and no events, to measure idle cost
    timeout_s: float = 30.0
    publish_timeout_s: float = 10.0
    publish_connections: int = 8
    profile_s: float = 0.0
    profile_native: bool = True
    profile_path: Path | None = None
    # Scheduling priority of the server, the clients and the publisher on a shared machine.
    nice: int = 0
    notes: dict[str, Any] = field(default_factory=dict)


def profiling(
    options: FanoutOptions, server: NexusUnderTest, *, during_connect: bool
) -> AbstractContextManager[object]:
    """py-spy on the server around the connects (connect-only runs) or the publishing."""
    path, pid = options.profile_path, server.pid
    if options.profile_s <= 0 or path is None or pid is None:
        return nullcontext()
    if during_connect != options.connect_only:
        return nullcontext()
    return Profiler(pid, options.profile_s, path, options.profile_native)


async def run_fanout(options: FanoutOptions, server: NexusUnderTest) -> dict[str, Any]:
    """Drive one run against `server`; the figures as a JSON-ready dict."""
    events = 0 if options.connect_only else round(options.rate * options.seconds)
    plans = plans_for(
        url=server.url,
        secret=server.secret,
        clients=options.clients,
        procs=options.procs,
        event_type=options.event_type,
        events=events,
        concurrency=options.concurrency,
        timeout_s=options.timeout_s,
    )
    figures: dict[str, Any] = {}
    async with ClientPool(plans) as pool:
        if options.nice:
            renice([os.getpid(), *pool.pids, *([server.pid] if server.pid else [])], options.nice)
        idle = sample_tree(server.pid) if server.pid else None
        machine_before = sample_machine(pool.pids)
        with profiling(options, server, during_connect=True):
            connected = await pool.ask("connect", timeout_s=options.timeout_s * 20)
        await asyncio.sleep(1.0)  # let the server finish the handshakes' leftovers
        loaded = sample_tree(server.pid) if server.pid else None
        figures["connect"] = connect_figures(connected, options.clients, idle, loaded)
        server_cpu = cpu_percent(idle, loaded) if idle and loaded else {}
        figures["connect"]["cpu_percent"] = server_cpu
        figures["connect"]["machine_percent"] = machine_percent(
            machine_before, sample_machine(pool.pids), server_cpu
        )
        if loaded is not None and server.pid:
            # What the connected sockets cost with no events: pings, timers, the GC.
            await asyncio.sleep(options.idle_s)
            idle_cpu = cpu_percent(loaded, sample_tree(server.pid)).get("nexus")
            figures["connect"]["nexus_idle_cpu_percent"] = idle_cpu
        if not options.connect_only:
            publication, usage = await publish_and_drain(options, server, pool, figures)
            results = await pool.ask("finish")
            figures["delivery"] = delivery_figures(results, publication, connected)
            received = figures["delivery"]["received"]
            if "nexus_cpu_s" in usage and received:
                usage["nexus_cpu_us_per_delivery"] = round(1e6 * usage["nexus_cpu_s"] / received, 1)
            figures["server"] = usage
            figures["clients_cpu_s"] = round(sum(r["cpu_s"] for r in results), 2)
        else:
            await pool.ask("finish")
    return figures


async def publish_and_drain(
    options: FanoutOptions, server: NexusUnderTest, pool: ClientPool, figures: dict[str, Any]
) -> tuple[Publication, dict[str, Any]]:
    """Warm up, then the measured publication with the server's usage sampled around it."""
    token = issue_token(server.secret, sub="bench-publisher", role=Role.ADMIN, ttl_s=3600)
    http = http_client(server.url, token, options.publish_timeout_s, options.publish_connections)
    async with http, AsyncExitStack() as stack:
        if options.warmup_s > 0:
            warm = await publish_paced(
                http,
                options.event_type,
                options.rate,
                options.warmup_s,
                warmup=True,
                answer_wait_s=options.publish_timeout_s + 5,
            )
            figures["warmup"] = warm.summary()
            await drain(pool, options, "warmup", warm.accepted * figures["connect"]["connected"])
        usage: dict[str, Any] = {}
        sampler: TreeSampler | None = None
        before: TreeSample | None = None
        if server.pid:
            sampler = stack.enter_context(TreeSampler(server.pid))
            stack.enter_context(profiling(options, server, during_connect=False))
            before = sample_tree(server.pid)
        machine_before = sample_machine(pool.pids)
        publication = await publish_paced(
            http,
            options.event_type,
            options.rate,
            options.seconds,
            warmup=False,
            answer_wait_s=options.publish_timeout_s + 5,
        )
        machine_after = sample_machine(pool.pids)
        if server.pid and before is not None:
            usage["cpu_percent_publishing"] = cpu_percent(before, sample_tree(server.pid))
        usage["machine_percent_publishing"] = machine_percent(
            machine_before, machine_after, usage.get("cpu_percent_publishing", {})
        )
        usage["load_average"] = [round(x, 2) for x in os.getloadavg()]
        expected = publication.accepted * figures["connect"]["connected"]
        figures["drain_s"] = await drain(pool, options, "deliveries", expected)
        if server.pid and before is not None:
            # The node's CPU from the first measured POST until the last delivery.
            spent = sample_tree(server.pid).cpu_s.get("nexus", 0.0) - before.cpu_s.get("nexus", 0)
            usage["nexus_cpu_s"] = round(spent, 2)
    if sampler is not None:
        usage |= sampler.figures()
    return publication, usage


async def drain(pool: ClientPool, options: FanoutOptions, counter: str, expected: int) -> float:
    """Wait until `expected` deliveries arrived, or none for `quiet_s`; seconds waited."""
    started = last_progress = time.monotonic()
    seen = -1
    while time.monotonic() - started < options.drain_s:
        total = sum(status[counter] for status in await pool.ask("status"))
        if total >= expected:
            break
        now = time.monotonic()
        if total != seen:
            seen, last_progress = total, now
        elif now - last_progress > options.quiet_s:
            break
        await asyncio.sleep(0.1)
    return round(time.monotonic() - started, 2)
