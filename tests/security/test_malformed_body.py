"""A body that is not JSON is a documented 400 on every route that takes one (but
`POST /events`, a 422 by CONTRACT.md), and a client
that leaves in the middle of its body costs the node no error and no traceback."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from httpx import AsyncClient

from azora_nexus.auth.tokens import Role
from tests.conftest import auth_header
from tests.security.served import Served

ADMIN = auth_header(Role.ADMIN)


def body_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "requestBody" in operation and (path, method) != ("/events", "post")
    ]


async def test_an_unparsable_body_is_a_documented_400_on_every_route_with_a_body(
    http: AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()
    operations = body_operations(schema)
    assert len(operations) >= 12
    for method, path, operation in operations:
        documented = operation["responses"].get("400")
        assert documented is not None, f"{method} {path} does not document 400"
        ref = documented["content"]["application/json"]["schema"]["$ref"]
        assert ref.rsplit("/", 1)[-1] in schema["components"]["schemas"]
        url = re.sub(r"\{[^}]+\}", "1", path)
        answer = await http.request(
            method, url, content=b'{"nope', headers={**ADMIN, "content-type": "application/json"}
        )
        assert answer.status_code == 400, (method, path, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "bad_request"
        assert error["message"].startswith("the body is not JSON"), error


async def test_publish_keeps_the_contracts_422_for_a_body_that_is_not_json(
    http: AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert "400" not in schema["paths"]["/events"]["post"]["responses"]
    answer = await http.post("/events", content=b'{"nope', headers=ADMIN)
    assert answer.status_code == 422
    assert answer.json()["error"]["message"].startswith("the body is not JSON")


async def test_valid_json_that_fails_checks_stays_422(http: AsyncClient) -> None:
    answer = await http.post("/api/courses", json={"title": 5}, headers=ADMIN)
    assert answer.status_code == 422
    answer = await http.post("/events", json={"type": "nope"}, headers=ADMIN)
    assert answer.status_code == 422


async def leave_mid_body(port: int, head: bytes, part: bytes) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head + part)
    await writer.drain()
    writer.close()
    await writer.wait_closed()


@pytest.mark.parametrize("path", ["/api/auth/register", "/events", "/api/wallets/transfer"])
async def test_a_client_leaving_mid_body_logs_no_error(
    served: Served, http: AsyncClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    token = ADMIN["Authorization"]
    declared = (
        f"POST {path} HTTP/1.1\r\nHost: nexus\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
    ).encode()
    chunked = (
        f"POST {path} HTTP/1.1\r\nHost: nexus\r\nAuthorization: {token}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    with caplog.at_level(logging.INFO):
        await leave_mid_body(served.port, declared, b'{"type": "system.alert", "pay')
        await leave_mid_body(served.port, chunked, b'20\r\n{"type": "system.alert", "pay')
        # The node noticed both departures and is still serving.
        await asyncio.sleep(0.5)
        assert (await http.get("/events/types")).status_code == 200
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert [f"{r.name}: {r.getMessage()}" for r in logged] == []
