"""Prometheus metrics of a Nexus node: what `/metrics` serves and the Grafana dashboard reads.

`NodeMetrics` is built by the composition root (`open_nexus`), one per node, with its own
registry: nothing is registered at import, and two nodes in one process count apart.
Gauges that describe shared state (outbox lag, stream length, backend health) are set at
scrape time by api/routes/metrics.py, so no loop polls them between scrapes. The cache's
counters come from its own collector in the node's registry (cache/counters.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

# Set for every worker of `--workers N` (cli/node.py): each process keeps its values in
# files there, and `/metrics` from any worker reads them all (prometheus_client's
# multiprocess mode, which reads this variable itself), so a scrape sees the whole node
# whichever worker answers it. Settings.metrics_dir is the same variable.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"

# Where a session finds its node's metrics (see bind_metrics).
METRICS_INFO = "azora.metrics"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class NodeMetrics:
    """Every metric of one node, registered in its own registry."""

    def __init__(self, shared_dir: Path | None = None) -> None:
        self.shared_dir = shared_dir
        self.registry = CollectorRegistry()
        self._file_backed: list[Collector] = []
        r = self.registry
        self.http_requests = Counter(
            "azora_http_requests",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_latency = Histogram(
            "azora_http_request_duration_seconds",
            "HTTP request latency, by route template",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sockets_connected = Gauge(
            "azora_sockets_connected",
            "Socket.IO sockets connected to this node",
            multiprocess_mode="livesum",  # every running worker's sockets
            registry=r,
        )
        self.events_published = Counter(
            "azora_events_published", "Events put on the stream", ["type"], registry=r
        )
        self.events_delivered = Counter(
            "azora_events_delivered",
            "Event deliveries to sockets of this node",
            ["type"],
            registry=r,
        )
        self.events_dropped = Counter(
            "azora_events_dropped",
            "Events not delivered to a socket that matched",
            ["type", "reason"],
            registry=r,
        )
        # Shared state read at scrape time: the newest reading is the value, whoever took it.
        self.outbox_lag_rows = Gauge(
            "azora_outbox_lag_rows",
            "Committed outbox rows not yet on the stream",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.outbox_lag_seconds = Gauge(
            "azora_outbox_lag_seconds",
            "Age of the oldest outbox row not yet on the stream",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.stream_length = Gauge(
            "azora_stream_length",
            "Entries in the event stream",
            multiprocess_mode="mostrecent",
            registry=r,
        )
        # What each store keeps (storage.py): outbox, wal_archive, stream, archive.
        self.storage_bytes = Gauge(
            "azora_storage_bytes",
            "Bytes a store keeps on disk",
            ["store"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.storage_items = Gauge(
            "azora_storage_items",
            "Items a store keeps: outbox rows, WAL segments, stream entries, archived events",
            ["store"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.storage_oldest_age = Gauge(
            "azora_storage_oldest_age_seconds",
            "Age of the oldest item a store keeps",
            ["store"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.storage_retention = Gauge(
            "azora_storage_retention_seconds",
            "How long a store keeps items (absent: forever, or bounded by count)",
            ["store"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.ledger_transfers = Counter(
            "azora_ledger_transfers", "Ledger transactions posted", ["kind"], registry=r
        )
        self.ledger_refusals = Counter(
            "azora_ledger_refusals", "Ledger movements refused", ["reason"], registry=r
        )
        self.backend_up = Gauge(
            "azora_backend_up",
            "1 when the backend answered its check",
            ["backend"],
            multiprocess_mode="mostrecent",
            registry=r,
        )
        self.backend_latency = Gauge(
            "azora_backend_latency_seconds",
            "How long the backend's check took",
            ["backend"],
            multiprocess_mode="mostrecent",
            registry=r,
        )

    @property
    def shared(self) -> bool:
        """Whether this node is one worker of several (its values in the shared files)."""
        return self.shared_dir is not None

    def add_file_backed(self, collector: Collector) -> None:
        """A collector that reads what it reports from a file at each scrape (the backend
        restarts): the same whichever worker answers, so it is never summed."""
        self._file_backed.append(collector)
        self.registry.register(collector)

    def exposition(self) -> bytes:
        """The Prometheus text of this node (with several workers: of every worker)."""
        if self.shared_dir is not None:
            every_worker = CollectorRegistry()
            MultiProcessCollector(every_worker, path=str(self.shared_dir))  # type: ignore[no-untyped-call]
            for collector in self._file_backed:
                every_worker.register(collector)
            return generate_latest(every_worker)
        return generate_latest(self.registry)


def bind_metrics(sessions: async_sessionmaker[AsyncSession], metrics: NodeMetrics) -> None:
    """Every session `sessions` makes from now on counts into `metrics` (the ledger's)."""
    info = dict(sessions.kw.get("info") or {})
    info[METRICS_INFO] = metrics
    sessions.configure(info=info)


def session_metrics(session: AsyncSession) -> NodeMetrics | None:
    """The metrics of the node whose session this is; None for a session of no node."""
    metrics = session.info.get(METRICS_INFO)
    return metrics if isinstance(metrics, NodeMetrics) else None


ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[..., Awaitable[Any]], Callable[..., Awaitable[Any]]],
    Awaitable[None],
]


class HttpMetrics:
    """ASGI middleware counting HTTP requests by route template (not raw path) and status,
    into the metrics `node_metrics()` returns (None before the node is open: not counted)."""

    def __init__(self, app: ASGIApp, node_metrics: Callable[[], NodeMetrics | None]) -> None:
        self.app = app
        self.node_metrics = node_metrics

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[..., Awaitable[Any]],
        send: Callable[..., Awaitable[Any]],
    ) -> None:
        metrics = self.node_metrics() if scope["type"] == "http" else None
        if metrics is None:
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
            metrics.http_requests.labels(method, template, str(status)).inc()
            metrics.http_latency.labels(method, template).observe(time.perf_counter() - started)
