"""MongoDB away, under history reads and at start.

A user's `GET /events?after=` that must read the archive (the stream was trimmed past
`after`) while MongoDB is frozen (SIGSTOP of the real server): a 503 naming mongo within the
backend timeout, not after the driver's socket timeout; then 200 once it is thawed. A node
started while MongoDB is down closes its mongo breaker by itself once MongoDB is back."""

from __future__ import annotations

import time

import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token
from tests.faults.fault_helpers import JWT_SECRET, RETRY_S, TIMEOUT_S, OwnBackends
from tests.faults.test_fail_fast import MARGIN_S, assert_unavailable, timed, until_status
from tests.support.server import serve_node
from tests.support.waiting import eventually

USER = {"Authorization": f"Bearer {issue_token(JWT_SECRET, sub='u1', role=Role.USER)}"}
# MAXLEN ~ trims whole nodes of 100 entries: this many leave the first ones archive-only.
EVENTS = 250


async def test_a_users_read_into_the_archive_with_mongo_frozen_is_a_quick_503(
    own_backends: OwnBackends,
) -> None:
    async with (
        serve_node(own_backends.settings(AZORA_STREAM_MAXLEN=20)) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
    ):
        publish = node.nexus.events.publish
        ids = [
            (await publish("system.alert", {"n": n}, source="t", user_id="u1")).id
            for n in range(EVENTS)
        ]
        assert await node.nexus.events.history.stream.first_id() != ids[0]

        def read() -> object:
            return http.get("/events", headers=USER, params={"after": ids[0], "limit": 10})

        with own_backends.frozen("mongo"):
            answer, answer_s = await timed(read())
            assert_unavailable(answer, "mongo")
            assert answer_s < TIMEOUT_S + MARGIN_S  # before: 5 x the timeout
        recovered_s = await until_status(read, 200, RETRY_S + TIMEOUT_S + 3)
        print(f"503 in {answer_s:.2f} s; 200 again {recovered_s:.2f} s after the thaw")


@pytest.mark.slow  # MongoDB is stopped and started again (seconds each)
async def test_a_node_started_while_mongo_is_down_closes_its_breaker_once_it_is_back(
    own_backends: OwnBackends,
) -> None:
    """What stays refused while the breaker is open: a history read into the archive answers
    503 at once; a `/health` (it calls MongoDB for real) would close it, so none is made."""
    mongo = own_backends.servers["mongo"]
    await mongo.stop()
    try:
        async with serve_node(own_backends.settings()) as node:
            breaker = node.nexus.guards.mongo
            assert breaker.is_open
            await mongo.restart()  # same port
            started = time.monotonic()

            async def closed() -> bool:
                return not breaker.is_open

            # Before: opened at start, before it had a probe, it stayed open for good.
            await eventually(closed, timeout_s=RETRY_S + TIMEOUT_S + 10)
            closed_s = time.monotonic() - started
            assert closed_s < RETRY_S + TIMEOUT_S + 2
            print(f"breaker closed {closed_s:.2f} s after MongoDB was back")
    finally:
        if mongo.pid is None:
            await mongo.restart()
