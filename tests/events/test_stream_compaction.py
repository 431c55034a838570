"""`compact_stream` drops the bytes XDEL leaves behind and keeps everything else: ids,
counters, consumer groups, consumers and pending entries."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from azora_nexus.events import compaction
from azora_nexus.events.compaction import compact_stream

KEY = "compaction-test"


async def snapshot(redis: Redis) -> tuple[Any, ...]:
    stream: Any = await redis.xinfo_stream(KEY)
    consumers: Any = await redis.xinfo_consumers(KEY, "g")
    pending: Any = await redis.xpending_range(KEY, "g", "-", "+", 100)
    return (
        await redis.xrange(KEY),
        {k: stream[k] for k in ("length", "last-generated-id", "entries-added")},
        stream["max-deleted-entry-id"],
        await redis.xinfo_groups(KEY),
        sorted(c["name"] for c in consumers),
        [(p["message_id"], p["consumer"], p["times_delivered"]) for p in pending],
    )


async def test_a_deleted_entrys_bytes_go_and_the_rest_of_the_stream_stays(redis: Redis) -> None:
    ids = [await redis.xadd(KEY, {"e": f"entry {i}"}) for i in range(10)]
    secret = await redis.xadd(KEY, {"e": "names someone-erased@example.com"})
    ids += [await redis.xadd(KEY, {"e": f"entry {i}"}) for i in range(10, 15)]
    await redis.xgroup_create(KEY, "g", id="0")
    await redis.xreadgroup("g", "reader", {KEY: ">"}, count=8)
    await redis.xreadgroup("g", "reader", {KEY: "0"})  # delivered twice
    await redis.xack(KEY, "g", ids[0])
    await redis.xgroup_createconsumer(KEY, "g", "idle")
    await redis.xdel(KEY, secret)
    dump: Any = await redis.dump(KEY)
    assert b"someone-erased" in dump  # XDEL alone keeps the bytes
    before = await snapshot(redis)

    assert await compact_stream(redis, KEY) == 15

    dump = await redis.dump(KEY)
    assert b"someone-erased" not in dump
    assert await snapshot(redis) == before
    # The group reads on where it stopped, and new entries follow the old ids.
    new_id = await redis.xadd(KEY, {"e": "after"})
    read: Any = await redis.xreadgroup("g", "reader", {KEY: ">"})
    assert [entry_id for entry_id, _ in read[0][1]][-1] == new_id
    assert len(read[0][1]) == 15 - 8 + 1


async def test_an_emptied_stream_keeps_its_ids_and_a_missing_one_is_left_alone(
    redis: Redis,
) -> None:
    ids = [await redis.xadd(KEY, {"e": str(i)}) for i in range(3)]
    await redis.xdel(KEY, *ids)
    assert await compact_stream(redis, KEY) == 0
    info: Any = await redis.xinfo_stream(KEY)
    assert (info["length"], info["last-generated-id"], info["entries-added"]) == (0, ids[-1], 3)
    assert await compact_stream(redis, "no-such-stream") == 0
    assert not await redis.exists("no-such-stream")


async def entry_ids(redis: Redis) -> list[Any]:
    entries: Any = await redis.xrange(KEY)
    return [entry_id for entry_id, _ in entries]


async def test_a_deletion_during_the_copy_starts_it_again_and_a_trim_is_followed(
    redis: Redis,
) -> None:
    ids = [await redis.xadd(KEY, {"e": str(i)}) for i in range(6)]
    scratch = KEY + compaction.SCRATCH_SUFFIX
    last = await redis.eval(compaction._COPY_CHUNK, 2, KEY, scratch, "", 4)
    await redis.xdel(KEY, ids[1])  # an erasure between two chunks
    assert await redis.eval(compaction._FINISH, 2, KEY, scratch, last) == -1
    assert not await redis.exists(scratch)
    assert await entry_ids(redis) == ids[:1] + ids[2:]

    last = await redis.eval(compaction._COPY_CHUNK, 2, KEY, scratch, "", 4)
    await redis.xtrim(KEY, minid=ids[3], approximate=False)  # the stream's cap trims meanwhile
    new_id = await redis.xadd(KEY, {"e": "meanwhile"})
    assert await redis.eval(compaction._FINISH, 2, KEY, scratch, last) == 4
    assert await entry_ids(redis) == [*ids[3:], new_id]
