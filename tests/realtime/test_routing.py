"""Which worker a request belongs to: the worker named by its Engine.IO sid, else any."""

from __future__ import annotations

import pytest

from azora_nexus.workers.routing import session_owner


@pytest.mark.parametrize(
    ("request_line", "owner"),
    [
        (b"GET /socket.io/?EIO=4&transport=polling&t=x&sid=1.AbC-_d HTTP/1.1\r\n", 1),
        (b"POST /socket.io/?EIO=4&transport=polling&sid=12.Zz HTTP/1.1\r\nHost: h\r\n", 12),
        (b"GET /socket.io/?EIO=4&transport=websocket&sid=0.x HTTP/1.1\r\n", 0),
        # A new session, an API call, or a sid no worker of ours made: any worker.
        (b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n", None),
        (b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n", None),
        (b"GET /api/users/me?sid=1.x HTTP/1.1\r\n", None),
        (b"GET /socket.io/?sid=AbCdEf HTTP/1.1\r\n", None),
        (b"GET /socket.io/?sid=x.AbCdEf HTTP/1.1\r\n", None),
        (b"GET /socket.io/?sid=123456.AbCdEf HTTP/1.1\r\n", None),
        (b"garbage\r\n", None),
    ],
)
def test_session_owner(request_line: bytes, owner: int | None) -> None:
    assert session_owner(request_line) == owner
