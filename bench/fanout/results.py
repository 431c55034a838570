"""Merging what the client processes counted into the run's figures."""

from __future__ import annotations

from typing import Any

from bench.fanout.histogram import Histogram
from bench.fanout.publisher import Publication
from bench.fanout.usage import TreeSample


def connect_figures(
    replies: list[dict[str, Any]],
    asked: int,
    idle: TreeSample | None,
    loaded: TreeSample | None,
) -> dict[str, Any]:
    """Connect+subscribe wall time and rate over all processes, and memory per socket."""
    connected = sum(r["connected"] for r in replies)
    wall_s = max(r["finished"] for r in replies) - min(r["started"] for r in replies)
    latency = Histogram()
    errors: dict[str, int] = {}
    for reply in replies:
        latency.merge(Histogram.from_wire(reply["latency"]))
        for message, count in reply["errors"].items():
            errors[message] = errors.get(message, 0) + count
    figures: dict[str, Any] = {
        "asked": asked,
        "connected": connected,
        "failed": sum(r["failed"] for r in replies),
        "errors": errors,
        "wall_s": round(wall_s, 2),
        "clients_per_s": round(connected / wall_s, 1) if wall_s > 0 else None,
        "per_client_ms": latency.summary_ms(),
    }
    if idle is not None and loaded is not None:
        nexus_delta = loaded.rss.get("nexus", 0) - idle.rss.get("nexus", 0)
        figures["nexus_rss_mb_idle"] = round(idle.rss.get("nexus", 0) / 2**20, 1)
        figures["nexus_rss_mb_connected"] = round(loaded.rss.get("nexus", 0) / 2**20, 1)
        figures["kb_per_socket"] = round(nexus_delta / 1024 / connected, 1) if connected else None
    return figures


def delivery_figures(
    results: list[dict[str, Any]], publication: Publication, connected: list[dict[str, Any]]
) -> dict[str, Any]:
    """Loss, duplicates and latency of the measured events, over every client process."""
    events = len(publication.accepted_seqs)
    receivers = [0] * events
    latency = Histogram()
    for result in results:
        for seq, count in enumerate(result["receivers"]):
            receivers[seq] += count
        latency.merge(Histogram.from_wire(result["latency"]))
    clients = sum(c["connected"] for c in connected)
    accepted = publication.accepted_seqs
    expected = publication.accepted * clients
    delivered = sum(n for seq, n in enumerate(receivers) if accepted[seq])
    return {
        "publish": publication.summary(),
        "clients": clients,
        "expected_deliveries": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "loss_percent": round(100 * (expected - delivered) / expected, 3) if expected else 0.0,
        "events_with_loss": sum(
            1 for seq, n in enumerate(receivers) if accepted[seq] and n < clients
        ),
        "delivered_unaccepted": sum(n for seq, n in enumerate(receivers) if not accepted[seq]),
        "duplicates": sum(r["duplicates"] for r in results),
        "foreign": sum(r["foreign"] for r in results),
        "still_open": sum(r["open"] for r in results),
        "latency_ms": latency.summary_ms(),
        "received": latency.total + sum(r["duplicates"] for r in results),
    }
