"""The cache's counters: one node's hits, misses, fills and invalidations, for `/cache/stats`
and for Prometheus (`azora_cache_*`).

A read counts once: a hit when its first lookup found the value, a wait hit when Redis
answered it after it waited for another reader's fill (or a writer's refill), a miss when
a database load answered it (its own, one it shared, or a fallback while Redis was down).
`hitRate` is the share answered by Redis, (hits + waitHits) / reads; `firstLookupHitRate`
counts hits alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path

from prometheus_client import Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import CollectorRegistry

HELP = {
    "hits": "Reads whose first lookup found the value",
    "wait_hits": "Reads answered from Redis after waiting for another reader's fill",
    "misses": "Reads answered by a database load",
    "loads": "Database loads run by the cache (one per coalesced group of readers)",
    "fills": "Values stored after a load",
    "fills_rejected": "Fills refused because a write (or an epoch move) came first",
    "coalesced": "Reads that shared another reader's load on this node",
    "lease_waits": "Flights that found the lease taken and waited for its holder's fill",
    "wait_timeouts": "Waits that ran out and took the lease over",
    "fallbacks": "Database loads made without Redis because it was unavailable",
    "stale_served": "Values served past their soft TTL by the reader that started their refresh",
    "refreshes": "Background reloads of values past their soft TTL",
    "refills": "Values writers reloaded after their commit (write-through)",
    "invalidations": "Keys invalidated after a commit",
    "pattern_invalidations": "Pattern invalidations run",
    "pattern_keys_removed": "Keys removed by pattern invalidations",
    "errors": "Redis calls that failed (each opens the circuit breaker)",
    "epoch_bumps": "Times this node moved the cache epoch after an outage",
}


@dataclass
class CacheStats:
    """Plain counters, bumped on the event loop's thread (no lock needed)."""

    hits: int = 0
    wait_hits: int = 0
    misses: int = 0
    loads: int = 0
    fills: int = 0
    fills_rejected: int = 0
    coalesced: int = 0
    lease_waits: int = 0
    wait_timeouts: int = 0
    fallbacks: int = 0
    stale_served: int = 0
    refreshes: int = 0
    refills: int = 0
    invalidations: int = 0
    pattern_invalidations: int = 0
    pattern_keys_removed: int = 0
    errors: int = 0
    epoch_bumps: int = 0

    @property
    def reads(self) -> int:
        return self.hits + self.wait_hits + self.misses

    @property
    def hit_rate(self) -> float:
        return (self.hits + self.wait_hits) / self.reads if self.reads else 0.0

    @property
    def first_lookup_hit_rate(self) -> float:
        return self.hits / self.reads if self.reads else 0.0

    def as_dict(self) -> dict[str, int | float]:
        """The counters in the wire's camelCase, with `hitRate`."""
        body: dict[str, int | float] = {_camel(f.name): getattr(self, f.name) for f in fields(self)}
        body["hitRate"] = round(self.hit_rate, 6)
        body["firstLookupHitRate"] = round(self.first_lookup_hit_rate, 6)
        return body


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


BREAKER_HELP = "1 while the cache's circuit breaker keeps reads off Redis"


class CacheCollector:
    """A Prometheus collector reading the counters when scraped."""

    def __init__(self, stats: CacheStats, breaker_open: Callable[[], bool]) -> None:
        self.stats = stats
        self.breaker_open = breaker_open

    def collect(self) -> Iterator[Metric]:
        for f in fields(self.stats):
            yield CounterMetricFamily(
                f"azora_cache_{f.name}", HELP[f.name], value=getattr(self.stats, f.name)
            )
        yield GaugeMetricFamily(
            "azora_cache_breaker_open", BREAKER_HELP, value=1.0 if self.breaker_open() else 0.0
        )

    def register(self, registry: CollectorRegistry) -> None:
        registry.register(self)


class SharedCacheCounters:
    """One worker's counters, added to the workers' shared metric files once a second.

    A collector is read only by its own process; with several workers, each adds what
    its counters grew by since the last push, so `/metrics` from any worker shows their
    sum (at most a second behind).
    """

    PERIOD_S = 1.0

    def __init__(
        self, stats: CacheStats, breaker_open: Callable[[], bool], shared_dir: Path
    ) -> None:
        self.stats = stats
        self.breaker_open = breaker_open
        self.shared_dir = shared_dir
        self.pushed = CacheStats()
        # registry=None: the shared files are their registry (and a node may open twice).
        self.counters = {
            f.name: Counter(f"azora_cache_{f.name}", HELP[f.name], registry=None)
            for f in fields(CacheStats)
        }
        self.breaker = Gauge(
            "azora_cache_breaker_open", BREAKER_HELP, registry=None, multiprocess_mode="livemax"
        )

    def push(self) -> None:
        for f in fields(self.stats):
            grown = getattr(self.stats, f.name) - getattr(self.pushed, f.name)
            if grown:
                self.counters[f.name].inc(grown)
        self.pushed = replace(self.stats)
        self.breaker.set(1.0 if self.breaker_open() else 0.0)

    def node_stats(self) -> CacheStats:
        """Every worker's counters: the shared files, with this worker's own counters as
        they are now rather than as last pushed (the others' are at most a second behind)."""
        pushed = {f"azora_cache_{f.name}_total": 0.0 for f in fields(CacheStats)}
        for family in MultiProcessCollector(None, str(self.shared_dir)).collect():  # type: ignore[no-untyped-call]
            for sample in family.samples:
                if sample.name in pushed:
                    pushed[sample.name] += sample.value
        return CacheStats(
            **{
                f.name: int(pushed[f"azora_cache_{f.name}_total"])
                - getattr(self.pushed, f.name)
                + getattr(self.stats, f.name)
                for f in fields(CacheStats)
            }
        )

    async def run(self) -> None:
        try:
            while True:
                self.push()
                await asyncio.sleep(self.PERIOD_S)
        finally:
            self.push()
