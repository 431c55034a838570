"""The paced publisher: `POST /events` at R per second from one keep-alive HTTP client.

Each POST starts at its slot (start + i / R) whether or not earlier ones have answered,
so a slow server shows up as late or refused events instead of a slower schedule. The
payload carries `seq` and the send time `sentUs` (wall clock, microseconds).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson

from bench.fanout.histogram import Histogram


@dataclass
class Publication:
    """What a paced run of POSTs achieved."""

    attempted: int = 0
    accepted: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    accepted_seqs: bytearray = field(default_factory=bytearray)
    http_latency: Histogram = field(default_factory=Histogram)
    max_lag_ms: float = 0.0  # how far behind its slot a POST started, at worst
    duration_s: float = 0.0

    def summary(self) -> dict[str, object]:
        return {
            "attempted": self.attempted,
            "accepted": self.accepted,
            "failures": dict(self.failures),
            "http_ms": self.http_latency.summary_ms(),
            "max_start_lag_ms": round(self.max_lag_ms, 1),
            "duration_s": round(self.duration_s, 2),
        }


def http_client(url: str, token: str, timeout_s: float, connections: int) -> httpx.AsyncClient:
    """A keep-alive client for `url` that sends `token` as the bearer."""
    return httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        timeout=timeout_s,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
    )


async def publish_paced(
    http: httpx.AsyncClient,
    event_type: str,
    rate: float,
    seconds: float,
    *,
    warmup: bool,
    answer_wait_s: float = 15.0,
) -> Publication:
    """POST round(rate * seconds) events on schedule; warm-up events get negative seqs."""
    count = round(rate * seconds)
    result = Publication(accepted_seqs=bytearray(0 if warmup else count))
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.01
    sends: list[asyncio.Task[None]] = []
    for index in range(count):
        due = start + index / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        result.max_lag_ms = max(result.max_lag_ms, (loop.time() - due) * 1000)
        seq = -1 - index if warmup else index
        sends.append(asyncio.create_task(send(http, event_type, seq, result)))
    # Bounded: a POST still unanswered well past the client's timeout counts as refused.
    _, late = await asyncio.wait(sends, timeout=answer_wait_s)
    for send_task in late:
        send_task.cancel()
    if late:
        result.failures["no answer in time"] += len(late)
    result.duration_s = loop.time() - start
    return result


async def send(http: httpx.AsyncClient, event_type: str, seq: int, result: Publication) -> None:
    """One POST /events; counts it as accepted on 202 and as a failure otherwise."""
    result.attempted += 1
    started = time.perf_counter()
    payload = {"seq": seq, "sentUs": time.time_ns() // 1000}
    body = orjson.dumps({"type": event_type, "payload": payload, "source": "bench"})
    try:
        response = await http.post("/events", content=body)
    except httpx.HTTPError as exc:
        result.failures[type(exc).__name__] += 1
        return
    finally:
        result.http_latency.record(round((time.perf_counter() - started) * 1e6))
    if response.status_code == 202:
        result.accepted += 1
        if seq >= 0:
            result.accepted_seqs[seq] = 1
    else:
        result.failures[f"HTTP {response.status_code}"] += 1
