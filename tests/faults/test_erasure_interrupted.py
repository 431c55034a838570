"""An erasure whose Redis is killed (kill -9 of the real server) in the middle of the event
stream's compaction: the request answers 503 at once, and once Redis is back the node
finishes the work by itself: the erased user's events leave the archive, the stream and
the AOF, the scratch copy goes, and nobody else's event is lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from bench.chaos.signals import kill_hard
from sqlalchemy import func, select

from azora_nexus.cache.client import create_redis
from azora_nexus.domain.privacy.models import PendingTraces
from azora_nexus.events.compaction import SCRATCH_SUFFIX
from azora_nexus.events.stream import STREAM_KEY
from tests.faults.fault_helpers import OwnBackends
from tests.faults.test_fail_fast import ADMIN, assert_unavailable, register
from tests.sovereignty.test_erasure_on_disk import on_disk
from tests.support.server import serve_node
from tests.support.waiting import eventually

# Enough entries that the compaction's copy takes several calls, so the kill lands in it.
FILLER = 8_000
RECOVER_S = 30.0
pytestmark = pytest.mark.slow


async def test_an_erasure_cut_by_a_redis_kill_mid_compaction_is_finished_later(
    own_backends: OwnBackends,
) -> None:
    async with (
        serve_node(own_backends.settings()) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as http,
    ):
        victim, other = (await register(http)).json(), (await register(http)).json()
        vid, oid = victim["user"]["id"], other["user"]["id"]
        publish = node.nexus.events.publish
        theirs = [(await publish("system.alert", {"first": 1}, source="t", user_id=oid)).id]
        for n in range(3):
            await publish("system.alert", {"n": n}, source="t", user_id=vid)
        raw = create_redis(own_backends.urls["redis"])
        entries: Any = await raw.xrange(STREAM_KEY, theirs[0], theirs[0])
        async with raw.pipeline(transaction=False) as pipe:
            for _ in range(FILLER):
                pipe.xadd(STREAM_KEY, {"e": entries[0][1][b"e"]})
            await pipe.execute()
        theirs.append((await publish("system.alert", {"late": 1}, source="t", user_id=oid)).id)

        erasing = asyncio.create_task(http.delete(f"/api/users/{vid}", headers=ADMIN))
        while not await raw.exists(STREAM_KEY + SCRATCH_SUFFIX):
            assert not erasing.done(), "the erasure ended before its compaction was seen"
            await asyncio.sleep(0.002)
        kill_hard(own_backends.pid("redis"))
        killed = time.monotonic()
        answer = await erasing
        answered_s = time.monotonic() - killed
        assert_unavailable(answer, "redis")
        assert answered_s < 3.0
        await raw.aclose()
        await own_backends.servers["redis"].restart()  # from its AOF, as the crash left it
        raw = create_redis(own_backends.urls["redis"])
        archive = node.nexus.documents.events
        try:
            needles = (vid, victim["user"]["email"], victim["user"]["username"])

            async def finished() -> bool:
                async with node.nexus.db.sessions() as session:
                    pending = await session.scalar(select(func.count()).select_from(PendingTraces))
                return pending == 0 and not await archive.count_documents({"userId": vid})

            await eventually(finished, timeout_s=RECOVER_S, every_s=0.2)
            recovered_s = time.monotonic() - killed
            stream: Any = await raw.xrange(STREAM_KEY)
            assert not [i for i, f in stream if vid.encode() in f[b"e"]]
            assert not await raw.exists(STREAM_KEY + SCRATCH_SUFFIX)
            assert await on_disk(raw, needles) == set()
            # Nobody else's event went: the other user's, first and last, are all there.
            history = await http.get(
                "/events", headers=ADMIN, params={"userId": oid, "limit": 1000}
            )
            assert history.status_code == 200, history.text
            assert set(theirs) <= {e["id"] for e in history.json()["events"]}
            assert len(stream) >= FILLER
            print(f"503 after {answered_s:.2f} s, traces gone {recovered_s:.1f} s after the kill")
        finally:
            await raw.aclose()
