"""Schemathesis over the OpenAPI schema against the app served by uvicorn on 127.0.0.1.

Every operation gets generated requests (valid and invalid) as a user and as an admin; no
answer may be a 5xx, use a status the operation does not document, or break its schema.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from azora_nexus.app import create_app
from azora_nexus.auth.tokens import Role, issue_token
from azora_nexus.config import Settings

EXAMPLES_PER_OPERATION = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Not part of the JSON API: an HTML page and the Socket.IO transport.
SKIPPED_PATHS = {"/console", "/metrics"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """The whole app (lifespan and all) on a uvicorn of its own thread; its base URL."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, loop="asyncio", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="schemathesis-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped during startup"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def seed_data(base_url: str, admin: dict[str, str]) -> dict[str, str]:
    """A registered user with money, a course and a job, so lists answer real items."""
    with httpx.Client(base_url=base_url, timeout=10) as http:
        registered = http.post(
            "/api/auth/register",
            json={"email": "fuzz@example.com", "username": "fuzzer", "password": "long enough pw"},
        )
        assert registered.status_code == 201, registered.text
        user = registered.json()
        auth = {"Authorization": f"Bearer {user['token']}"}
        reward = {"userId": user["user"]["id"], "currency": "USD", "amount": "1000"}
        assert http.post("/api/rewards/mining", json=reward, headers=admin).status_code < 300
        course = {"title": "Seeded", "lessons": [{"title": "One", "content": "x"}]}
        assert http.post("/api/courses", json=course, headers=admin).status_code == 201
        job = {"title": "Seeded job", "budget": "10", "currency": "USD"}
        assert http.post("/api/jobs", json=job, headers=auth).status_code == 201
    return auth


def run_operation(operation: Any, base_url: str, headers: dict[str, str]) -> None:
    """Generated requests for one operation, each answer checked."""

    @seed(20261123)
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def check(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=10)

    check()


def test_no_operation_answers_5xx_or_breaks_its_schema(served: str, settings: Settings) -> None:
    assert settings.jwt_secret is not None
    admin = {
        "Authorization": f"Bearer {issue_token(settings.jwt_secret, sub='admin', role=Role.ADMIN)}"
    }
    user = seed_data(served, admin)
    schema = schemathesis.openapi.from_url(f"{served}/openapi.json")
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an invalid operation: {result.err()}"
        operations.append(result.ok())
    tested = [op for op in operations if op.path not in SKIPPED_PATHS]
    assert len(tested) >= 25
    failures: list[str] = []
    for operation in tested:
        for who, headers in (("user", user), ("admin", admin)):
            try:
                run_operation(operation, served, headers)
            except Exception as exc:  # collect them all: one run shows every broken route
                failures.append(f"{operation.label} as {who}: {exc}")
    assert failures == [], "\n\n".join(failures)
