"""The fan-out bench counts right: percentiles, loss, duplicates, and a small real run."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
from bench.fanout.histogram import Histogram, bucket_of, bucket_top
from bench.fanout.publisher import Publication
from bench.fanout.results import delivery_figures
from bench.fanout.run import FanoutOptions, run_fanout
from bench.fanout.server import NexusUnderTest
from bench.fanout.tally import Tally

from azora_nexus.config import Settings
from tests.bench_harness.served_node import serve_nexus

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[NexusUnderTest]:
    """This test's Nexus on a free port of 127.0.0.1."""
    async with serve_nexus(settings) as server:
        yield server


def test_every_value_falls_in_a_bucket_at_most_one_64th_wide() -> None:
    for value in [*range(300), *random.Random(7).sample(range(300, 10**9), 3000)]:
        index = bucket_of(value)
        assert bucket_top(index - 1) < value <= bucket_top(index) if index else value == 0
        width = bucket_top(index) - (bucket_top(index - 1) if index else -1)
        assert width <= max(1, value / 64)


def test_percentiles_are_within_bucket_precision_and_merge_like_one_histogram() -> None:
    values = random.Random(1).sample(range(1, 2_000_000), 20_000)
    whole, first, second = Histogram(), Histogram(), Histogram()
    for n, value in enumerate(values):
        whole.record(value)
        (first if n % 2 else second).record(value)
    first.merge(Histogram.from_wire(second.to_wire()))
    ordered = sorted(values)
    for percent in (50.0, 95.0, 99.0):
        exact = ordered[round(len(values) * percent / 100) - 1]
        assert abs(whole.percentile_us(percent) - exact) <= exact / 64
    assert first.counts == whole.counts
    assert (first.total, first.min_us, first.max_us) == (20_000, ordered[0], ordered[-1])


def test_delivery_figures_count_losses_duplicates_and_unaccepted_events() -> None:
    tally = Tally(clients=2, events=4)
    for client, seq in [(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 0), (1, 1), (1, 3)]:
        tally.record(client, "t", {"payload": {"seq": seq, "sentUs": 1_000}}, 3_000_000)
    tally.record(1, "t", {"payload": {"seq": -1, "sentUs": 0}}, 0)  # a warm-up event
    tally.record(1, "t", {"unrelated": True}, 0)
    publication = Publication(attempted=4, accepted=3, accepted_seqs=bytearray([1, 1, 1, 0]))
    figures = delivery_figures([tally.to_wire() | {"open": 2}], publication, [{"connected": 2}])
    assert figures["expected_deliveries"] == 6
    assert figures["delivered"] == 5  # client 1 missed seq 2
    assert figures["lost"] == 1
    assert figures["events_with_loss"] == 1
    assert figures["delivered_unaccepted"] == 2  # seq 3 arrived though its POST failed
    assert figures["duplicates"] == 1
    assert figures["foreign"] == 1
    assert figures["latency_ms"]["count"] == 7
    assert figures["latency_ms"]["p50"] == 2.0


async def test_a_small_run_against_a_real_node_delivers_every_event_once(
    served: NexusUnderTest,
) -> None:
    options = FanoutOptions(
        clients=20, rate=20, seconds=1, warmup_s=0.5, procs=2, concurrency=10, drain_s=10
    )
    figures = await run_fanout(options, served)
    connect, delivery = figures["connect"], figures["delivery"]
    assert (connect["connected"], connect["failed"]) == (20, 0)
    assert delivery["publish"]["attempted"] == delivery["publish"]["accepted"] == 20
    assert (delivery["expected_deliveries"], delivery["delivered"]) == (400, 400)
    assert (delivery["lost"], delivery["duplicates"], delivery["foreign"]) == (0, 0, 0)
    assert delivery["latency_ms"]["count"] == 400
    assert 0 < delivery["latency_ms"]["p50"] <= delivery["latency_ms"]["max"] < 10_000
    assert figures["warmup"]["accepted"] == 10
