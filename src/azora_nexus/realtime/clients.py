"""Which clients get the recovery offset on their events.

Connection state recovery tags every event packet with the event id as its last argument
(as Node's server does with recovery on): socket.io-client keeps it and presents it when it
reconnects. python-socketio's client cannot recover (it ignores the `pid`) and calls a
handler with every argument a packet carries, so a one-argument handler (`def on(event)`)
would fail on the offset and the event would be lost. Its Engine.IO client
(python-engineio) is known by its handshake: the only one that puts `transport` before
`EIO` in the query. It gets plain events and no session; every other client gets offsets.
"""

from __future__ import annotations

from urllib.parse import parse_qsl


def takes_offsets(query_string: str) -> bool:
    """Whether the client whose handshake has this query gets offsets (not python-engineio)."""
    names = [name for name, _ in parse_qsl(query_string, keep_blank_values=True)]
    if "transport" in names and "EIO" in names:
        return names.index("EIO") < names.index("transport")
    return True
