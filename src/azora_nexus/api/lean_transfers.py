"""The lean path of `POST /api/wallets/transfer`, beneath FastAPI (as api/lean.py reads).

Measured (`python -m bench.ledger_bench --vs-pgledger --profile`): with transfers
group-committed, FastAPI's middleware, route matching and dependency injection cost the
node more CPU than the transfer. This path keeps what the route does: the token
(deps.authenticate), the body validated by the route's own model, one call of
`ledger.transfers.transfer`, the answer serialised by the route's response model (201),
domain errors rendered by FastAPI's own handlers, and the request counted in the metrics
under the route's template. Anything it does not take exactly as the happy path expects
(another method or content type, no bearer token, a body with no length or a long one,
a body the model refuses) goes on to FastAPI with its body replayed, so every error
answer is the FastAPI route's own.
"""

from __future__ import annotations

import time
from collections.abc import MutableMapping
from typing import Any

from pydantic import ValidationError

from azora_nexus.api.deps import authenticate
from azora_nexus.api.lean_base import (
    LeanRoute,
    Receive,
    Scope,
    Send,
    bearer_credentials,
    send_json,
)
from azora_nexus.domain.ledger import transfers
from azora_nexus.domain.ledger.schemas import TransferRequest
from azora_nexus.nexus import Nexus

PATH = "/api/wallets/transfer"
# A transfer's body is a few hundred bytes; a longer one is FastAPI's to limit and refuse.
MAX_BODY_BYTES = 4096


def _parts(headers: list[tuple[bytes, bytes]]) -> tuple[str, int] | None:
    """The bearer token and body length of a JSON request this path takes, else None."""
    token: str | None = None
    seen = False
    length: int | None = None
    json = False
    for name, value in headers:
        if name == b"authorization":
            if seen:
                return None
            seen = True
            token = bearer_credentials(value)
        elif name == b"content-length":
            if length is not None or not value.isdigit() or int(value) > MAX_BODY_BYTES:
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            return None
        elif name == b"content-type":
            json = value == b"application/json"
    if token is None or length is None or not json:
        return None
    return token, length


async def _read_body(receive: Receive, length: int) -> bytes | None:
    """The whole body, or None if it is not the declared length."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > length:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size == length else None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then whatever the client sends next."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class LeanTransfers(LeanRoute):
    """ASGI app: the lean path for a plain transfer, `app` for everything else."""

    method = "POST"
    template = PATH

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        taken = scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == PATH
        nexus = self.nexus() if taken else None
        parts = _parts(scope["headers"]) if nexus is not None else None
        if nexus is None or parts is None:
            await self.app(scope, receive, send)
            return
        token, length = parts
        raw = await _read_body(receive, length)
        try:
            body = None if raw is None else TransferRequest.model_validate_json(raw)
        except ValidationError:
            body = None
        if body is None:
            await self.app(scope, _replaying(raw or b"", receive), send)
            return
        await self.transfer(nexus, (token, body), scope, receive, send)

    async def transfer(
        self,
        nexus: Nexus,
        request: tuple[str, TransferRequest],
        scope: Scope,
        receive: Receive,
        send: Send,
    ) -> None:
        token, body = request
        started = time.perf_counter()
        status = 201
        try:
            actor = authenticate(nexus, token)
            posted = await transfers.transfer(nexus.db.sessions, body, actor=actor)
        except Exception as exc:  # rendered as FastAPI renders it, by the same handler
            status = await self.render_error(scope, receive, send, exc)
        else:
            await send_json(send, 201, posted.model_dump_json(by_alias=True).encode())
        finally:
            self.count(nexus, status, started)
