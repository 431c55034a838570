"""A worker's end of the hand-over: connections the parent accepted, served as our own."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from functools import partial

from azora_nexus.workers.routing import MAX_HEAD_BYTES

logger = logging.getLogger(__name__)

# A hand-over carries the bytes the parent read: at most one read past MAX_HEAD_BYTES.
MAX_MESSAGE_BYTES = MAX_HEAD_BYTES + 256 * 1024


class Resumed(asyncio.Protocol):
    """Gives a handed-over connection to `protocol`, the bytes the parent read first."""

    def __init__(self, protocol: asyncio.Protocol, head: bytes) -> None:
        self.protocol = protocol
        self.head = head

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # From here the transport talks to the server's protocol directly; the head goes in
        # before the transport reads anything more (nothing runs in between).
        transport.set_protocol(self.protocol)
        self.protocol.connection_made(transport)
        self.protocol.data_received(self.head)


class Intake:
    """Takes connections from the parent's channel and serves them with `new_protocol`."""

    def __init__(
        self,
        channel: socket.socket,
        new_protocol: Callable[[], asyncio.Protocol],
        on_parent_gone: Callable[[], None],
    ) -> None:
        self.channel = channel
        self.new_protocol = new_protocol
        self.on_parent_gone = on_parent_gone
        self._opening: set[asyncio.Task[object]] = set()

    def start(self) -> None:
        """Take connections from now on and tell the parent this worker is ready."""
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel, self._receive)
        self.channel.send(b"ready")

    def stop(self) -> None:
        asyncio.get_running_loop().remove_reader(self.channel)

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                head, fds, _, _ = socket.recv_fds(self.channel, MAX_MESSAGE_BYTES, 1)
            except BlockingIOError:
                return
            if not head and not fds:  # the parent closed its end: it is gone
                self.stop()
                self.on_parent_gone()
                return
            for fd in fds:
                connection = socket.socket(fileno=fd)
                connection.setblocking(False)
                task = loop.create_task(
                    loop.connect_accepted_socket(partial(self._resumed, head), connection)
                )
                self._opening.add(task)
                task.add_done_callback(self._opened)

    def _resumed(self, head: bytes) -> Resumed:
        return Resumed(self.new_protocol(), head)

    def _opened(self, task: asyncio.Task[object]) -> None:
        self._opening.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.warning("a handed-over connection could not be opened: %s", task.exception())
