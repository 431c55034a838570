"""The node's one expiry timer: every watched socket is reported once its second has passed,
none that left or moved, and one that moved is reported at its new second."""

from __future__ import annotations

import asyncio
import time

from azora_nexus.realtime.expiry import Expiries


async def test_sockets_are_reported_once_at_their_second_and_not_after_leaving() -> None:
    reported: list[tuple[float, list[str]]] = []
    done = asyncio.Event()

    def on_expired(sids: list[str]) -> None:
        reported.append((time.time(), sorted(sids)))
        if "last" in sids:
            done.set()

    expiries = Expiries(on_expired)
    soon = int(time.time()) + 1
    for sid in ("a", "b", "c", "gone", "moved"):
        expiries.add(sid, soon)
    expiries.add("alone", soon + 1)
    expiries.discard("gone", soon)
    expiries.discard("moved", soon)
    expiries.add("moved", soon + 2)
    expiries.add("gone", soon)  # back in a second it had left (a reconnect with its token)
    expiries.discard("gone", soon)
    expiries.add("last", soon + 2)
    assert len(expiries) == 6
    await asyncio.wait_for(done.wait(), 10)
    assert [sids for _, sids in reported] == [["a", "b", "c"], ["alone"], ["last", "moved"]]
    times = [at for at, _ in reported]
    assert all(at >= second for at, second in zip(times, (soon, soon + 1, soon + 2), strict=True))
    assert len(expiries) == 0
    assert expiries.seconds == []
    assert expiries.timer is None
    expiries.close()
