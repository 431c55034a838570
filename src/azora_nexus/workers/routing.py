"""Sticky routing: the parent reads each new connection's request line and hands the
connection to the worker that must serve it.

A request that names an Engine.IO session (`sid=<worker>.<id>`: a polling request, or
the upgrade of a polling session to websocket) goes to the worker holding that session;
any other connection goes to the next worker in turn. The hand-over passes the socket's
file descriptor and the bytes already read over a Unix socket pair (SCM_RIGHTS): after it
the parent is out of the path and the worker serves the connection as if it had accepted
it. (Node's @socket.io/sticky works the same way.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import deque
from dataclasses import dataclass, field
from typing import cast

logger = logging.getLogger(__name__)

# A client must send its request line this soon after connecting (slowloris guard)...
HEAD_TIMEOUT_S = 10.0
# ... and within this many bytes: a request line is short; the rest goes along unread.
MAX_HEAD_BYTES = 16 * 1024
# Room for hand-overs queued in the kernel while a worker is busy (the kernel caps it at
# net.core.wmem_max; past that they wait in `Channel.pending`).
CHANNEL_BUFFER_BYTES = 4 * 1024 * 1024
# What a connection gets while no worker runs (all starting, or all restarting).
NO_WORKER = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
    b"Content-Length: 80\r\nConnection: close\r\n\r\n"
    b'{"error":{"code":"unavailable","message":"no worker is running, retry shortly"}}'
)


def session_owner(head: bytes) -> int | None:
    """The worker whose Engine.IO session the request names, or None when it names none."""
    line = head.split(b"\r\n", 1)[0]
    parts = line.split(b" ")
    if len(parts) != 3:
        return None
    path, _, query = parts[1].partition(b"?")
    if not path.startswith(b"/socket.io"):
        return None
    for item in query.split(b"&"):
        if item.startswith(b"sid="):
            index, dot, _ = item[4:].partition(b".")
            return int(index) if dot and index.isdigit() and len(index) <= 4 else None
    return None


@dataclass(eq=False)
class Channel:
    """The parent's end of a worker's socket pair: connections go down it, with their bytes."""

    index: int
    sock: socket.socket
    pending: deque[tuple[bytes, int]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, CHANNEL_BUFFER_BYTES)

    def hand_over(self, head: bytes, fd: int) -> None:
        """Send connection `fd` (ours to close) and its first bytes to the worker, in order."""
        if self.pending or not self._send(head, fd):
            if not self.pending:
                asyncio.get_running_loop().add_writer(self.sock, self._flush)
            self.pending.append((head, fd))

    def _send(self, head: bytes, fd: int) -> bool:
        try:
            socket.send_fds(self.sock, [head], [fd])
        except BlockingIOError:
            return False
        except OSError as exc:  # the worker is gone: its connections are lost with it
            logger.warning("worker %d: could not hand a connection over: %s", self.index, exc)
        os.close(fd)
        return True

    def _flush(self) -> None:
        while self.pending:
            head, fd = self.pending[0]
            if not self._send(head, fd):
                return
            self.pending.popleft()
        asyncio.get_running_loop().remove_writer(self.sock)

    def close(self) -> None:
        if self.pending:
            asyncio.get_running_loop().remove_writer(self.sock)
        while self.pending:
            os.close(self.pending.popleft()[1])
        self.sock.close()


class Workers:
    """The workers ready to take connections, by index."""

    def __init__(self) -> None:
        self.channels: dict[int, Channel] = {}
        self._turn = 0

    def pick(self, owner: int | None) -> Channel | None:
        """The session's owner if it runs, else the next worker in turn (None: no worker)."""
        if owner is not None and (channel := self.channels.get(owner)) is not None:
            return channel
        if not self.channels:
            return None
        ready = list(self.channels.values())
        self._turn = (self._turn + 1) % len(ready)
        return ready[self._turn]


class Router(asyncio.Protocol):
    """One new connection on the parent's port, until it is handed to a worker."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self.head = b""
        self.transport: asyncio.Transport | None = None
        self.deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport; they have its methods.
        self.transport = cast(asyncio.Transport, transport)
        self.deadline = asyncio.get_running_loop().call_later(HEAD_TIMEOUT_S, self.transport.abort)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.head += data
        if b"\r\n" not in self.head and len(self.head) < MAX_HEAD_BYTES:
            return  # the request line is not all here yet
        self.transport.pause_reading()
        channel = self.workers.pick(session_owner(self.head))
        if channel is None:
            self.transport.write(NO_WORKER)
            self.transport.close()
            return
        # Our own copy of the descriptor: closing the transport then leaves the connection
        # open (it is the worker's once the copy crosses over).
        fd = os.dup(self.transport.get_extra_info("socket").fileno())
        channel.hand_over(self.head, fd)
        self.transport.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
