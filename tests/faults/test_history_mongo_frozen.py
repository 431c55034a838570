"""A user's `GET /events?after=` that must read the archive (the stream was trimmed past
`after`) while MongoDB is frozen (SIGSTOP of the real server): a 503 naming mongo within
the backend timeout, not after the driver's socket timeout; then 200 once it is thawed."""

from __future__ import annotations

import httpx

from azora_nexus.auth.tokens import Role, issue_token
from tests.faults.fault_helpers import JWT_SECRET, RETRY_S, TIMEOUT_S, OwnBackends
from tests.faults.test_fail_fast import MARGIN_S, assert_unavailable, timed, until_status
from tests.support.server import serve_node

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
