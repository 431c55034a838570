"""Prometheus metrics of a Nexus node: what `/metrics` serves and the Grafana dashboard reads.

Every metric is defined here, importing nothing of Nexus, so any module may bump one.
Gauges that describe shared state (outbox lag, stream length, backend health, sockets) are
set at scrape time by api/routes/metrics.py, so no loop polls them between scrapes. The
cache's counters come from its own collector in the node's registry (cache/counters.py).
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import CollectorRegistry

# Set for every worker of `--workers N` (cli/node.py): each process keeps its values in
# files there, and `/metrics` from any worker reads them all (prometheus_client's
# multiprocess mode), so a scrape sees the whole node whichever worker answers it.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def shared_between_workers() -> bool:
    """Whether this process is one worker of several (metrics in shared files)."""
    return bool(os.environ.get(MULTIPROCESS_DIR))


HTTP_REQUESTS = Counter(
    "azora_http_requests",
    "HTTP requests answered, by route template and status",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "azora_http_request_duration_seconds",
    "HTTP request latency, by route template",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
SOCKETS_CONNECTED = Gauge(
    "azora_sockets_connected",
    "Socket.IO sockets connected to this node",
    multiprocess_mode="livesum",  # every running worker's sockets
)
EVENTS_PUBLISHED = Counter("azora_events_published", "Events put on the stream", ["type"])
EVENTS_DELIVERED = Counter(
    "azora_events_delivered", "Event deliveries to sockets of this node", ["type"]
)
EVENTS_DROPPED = Counter(
    "azora_events_dropped", "Events not delivered to a socket that matched", ["type", "reason"]
)
# Shared state read at scrape time: the newest reading is the value, whoever took it.
OUTBOX_LAG_ROWS = Gauge(
    "azora_outbox_lag_rows",
    "Committed outbox rows not yet on the stream",
    multiprocess_mode="mostrecent",
)
OUTBOX_LAG_SECONDS = Gauge(
    "azora_outbox_lag_seconds",
    "Age of the oldest outbox row not yet on the stream",
    multiprocess_mode="mostrecent",
)
STREAM_LENGTH = Gauge(
    "azora_stream_length", "Entries in the event stream", multiprocess_mode="mostrecent"
)
LEDGER_TRANSFERS = Counter("azora_ledger_transfers", "Ledger transactions posted", ["kind"])
LEDGER_REFUSALS = Counter("azora_ledger_refusals", "Ledger movements refused", ["reason"])
BACKEND_UP = Gauge(
    "azora_backend_up",
    "1 when the backend answered its check",
    ["backend"],
    multiprocess_mode="mostrecent",
)
BACKEND_LATENCY = Gauge(
    "azora_backend_latency_seconds",
    "How long the backend's check took",
    ["backend"],
    multiprocess_mode="mostrecent",
)


def exposition(node_registry: CollectorRegistry) -> bytes:
    """The Prometheus text of this node's metrics and of its own collectors."""
    if shared_between_workers():
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker) + generate_latest(node_registry)
    return generate_latest(REGISTRY) + generate_latest(node_registry)


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]],
    Awaitable[None],
]


class HttpMetrics:
    """ASGI middleware counting HTTP requests by route template (not raw path) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[Any]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            # Unmatched paths share one label, so scanners cannot blow up the series count.
            template = getattr(route, "path", "unmatched")
            method = scope["method"]
            HTTP_REQUESTS.labels(method, template, str(status)).inc()
            HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - started)
