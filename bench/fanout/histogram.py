"""A log-linear latency histogram (HdrHistogram's layout, 64 sub-buckets per octave).

Values are whole microseconds. Every bucket is at most 1/64 (1.6%) of its value wide, so a
percentile read from it is within 1.6% of the exact one. Histograms of several processes
merge by adding counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SUB_BITS = 6
SUB_BUCKETS = 1 << SUB_BITS  # per octave
TOP_BITS = SUB_BITS + 1
OCTAVES = 40  # up to 2**46 us: far beyond any run


def bucket_of(value_us: int) -> int:
    """The bucket holding `value_us` (negative values count as 0)."""
    if value_us <= 0:
        return 0
    shift = value_us.bit_length() - TOP_BITS
    if shift <= 0:
        return value_us
    return shift * SUB_BUCKETS + (value_us >> shift)


def bucket_top(index: int) -> int:
    """The largest value that falls into bucket `index`."""
    shift = max(0, index // SUB_BUCKETS - 1)
    mantissa = index - shift * SUB_BUCKETS
    return ((mantissa + 1) << shift) - 1


@dataclass
class Histogram:
    """Counts of microsecond values, with the exact minimum and maximum."""

    counts: list[int] = field(default_factory=lambda: [0] * (SUB_BUCKETS * (OCTAVES + 1)))
    total: int = 0
    min_us: int | None = None
    max_us: int = 0

    def record(self, value_us: int) -> None:
        """Count one value."""
        self.counts[bucket_of(value_us)] += 1
        self.total += 1
        self.max_us = max(self.max_us, value_us)
        if self.min_us is None or value_us < self.min_us:
            self.min_us = value_us

    def merge(self, other: Histogram) -> None:
        """Add `other`'s counts to these."""
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.total += other.total
        self.max_us = max(self.max_us, other.max_us)
        if other.min_us is not None:
            self.min_us = other.min_us if self.min_us is None else min(self.min_us, other.min_us)

    def percentile_us(self, percent: float) -> int:
        """The smallest bucket top at or above `percent` of the values (0 when empty)."""
        if self.total == 0:
            return 0
        rank = max(1, round(self.total * percent / 100))
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank:
                return min(bucket_top(index), self.max_us)
        return self.max_us

    def summary_ms(self) -> dict[str, float | int]:
        """count, min, p50, p95, p99, p99.9 and max, in milliseconds (0.01 ms steps)."""
        if self.total == 0:
            return {"count": 0}
        figures: dict[str, float | int] = {"count": self.total}
        figures["min"] = round((self.min_us or 0) / 1000, 2)
        for label, percent in (("p50", 50.0), ("p95", 95.0), ("p99", 99.0), ("p99.9", 99.9)):
            figures[label] = round(self.percentile_us(percent) / 1000, 2)
        figures["max"] = round(self.max_us / 1000, 2)
        return figures

    def to_wire(self) -> dict[str, Any]:
        """A compact picklable/JSON form: only the non-empty buckets."""
        return {
            "buckets": {i: c for i, c in enumerate(self.counts) if c},
            "total": self.total,
            "min_us": self.min_us,
            "max_us": self.max_us,
        }

    @classmethod
    def from_wire(cls, wire: dict[str, Any]) -> Histogram:
        """The histogram `to_wire` described."""
        histogram = cls(total=wire["total"], min_us=wire["min_us"], max_us=wire["max_us"])
        for index, count in wire["buckets"].items():
            histogram.counts[int(index)] = count
        return histogram
