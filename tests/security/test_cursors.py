"""Cursors and `after` are parsed strictly: a cursor out of PostgreSQL's range, above BIGINT,
with non-ASCII digits or a trailing newline is a 422 on a kept-alive connection (never a
500), and the same `after` over Socket.IO is refused in the ack (never a silent gap)."""

from __future__ import annotations

import uuid

import pytest
import socketio
from httpx import AsyncClient

from azora_nexus.auth.tokens import Role
from azora_nexus.domain.paging import encode_cursor
from tests.conftest import auth_header, token_for
from tests.security.served import Served

SOME_ID = str(uuid.uuid4())
BAD_CREATION_KEYS = [
    ["0001-01-01T00:00:00+14:00", SOME_ID],  # before year 1 in UTC
    ["9999-12-31T23:59:59-14:00", SOME_ID],  # after year 9999 in UTC
    ["\uff12\uff10\uff12\uff14-01-01T00:00:00+00:00", SOME_ID],  # full-width digits
    ["2024-01-01T00:00:00+00:00", f"{{{SOME_ID}}}"],  # a uuid, but not as we write them
    ["2024-01-01T00:00:00", SOME_ID],  # no zone
]
LISTS = [
    "/api/wallets",
    "/api/jobs",
    "/api/courses",
    "/api/certificates",
    "/api/admin/users",
    "/api/admin/wallets",
]
BAD_EVENT_IDS = ["1-0\n", "\u0661-\u0660", f"{2**63}-0", "1-0 ", "+1-0", "1-18446744073709551616"]


async def assert_invalid(http: AsyncClient, path: str, params: dict[str, str]) -> None:
    role = Role.ADMIN if path.startswith(("/api/admin", "/events")) else Role.USER
    response = await http.get(path, params=params, headers=auth_header(role, SOME_ID))
    assert response.status_code == 422, (path, params, response.text)
    assert response.json()["error"]["code"] == "invalid"
    assert response.headers.get("connection") != "close"


@pytest.mark.parametrize("key", BAD_CREATION_KEYS)
async def test_a_creation_cursor_out_of_range_is_a_422_on_every_list(
    http: AsyncClient, key: list[str]
) -> None:
    for path in LISTS:
        await assert_invalid(http, path, {"after": encode_cursor(key)})


@pytest.mark.parametrize(
    "raw", ["99999999999999999999", "9223372036854775808", "\u0661\u0662", " 12", "1_0"]
)
async def test_a_wallet_history_cursor_outside_bigint_digits_is_a_422(
    http: AsyncClient, raw: str
) -> None:
    path = f"/api/wallets/{uuid.uuid4()}/transactions"
    await assert_invalid(http, path, {"after": encode_cursor([raw])})


@pytest.mark.parametrize("after", BAD_EVENT_IDS)
async def test_an_events_after_that_is_not_plain_digits_is_a_422(
    http: AsyncClient, after: str
) -> None:
    await assert_invalid(http, "/events", {"after": after})
    user = auth_header(Role.USER, str(uuid.uuid4()))
    response = await http.get("/events", params={"after": after}, headers=user)
    assert response.status_code == 422, response.text


async def test_a_socket_subscribing_after_a_bad_id_is_refused_in_the_ack(
    served: Served,
) -> None:
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(
        served.url, auth={"token": token_for(Role.ADMIN)}, transports=["websocket"]
    )
    try:
        for after in BAD_EVENT_IDS:
            ack = await client.call(
                "subscribe", {"types": ["system.alert"], "after": after}, timeout=10
            )
            assert ack["ok"] is False, (after, ack)
            assert ack["error"]["code"] == "invalid"
        ack = await client.call("subscribe", {"types": ["system.alert"], "after": "0-0"})
        assert ack == {"ok": True, "subscribed": ["system.alert"]}
    finally:
        await client.disconnect()
