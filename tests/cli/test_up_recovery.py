"""Issue 18's check against `azora up --workers 2`: the stock socket.io-client with
`transports: ["websocket"]` subscribes once, gets 5 events, loses its transport
(`socket.io.engine.close()`), 5 events are published while it is away, and on reconnect it
is recovered (`socket.recovered === true`) with all 15 events once and in order, without a
second subscribe; then the same with the client reconnecting by itself, and over polling."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from azora_nexus.auth.tokens import Role, issue_token
from tests.cli.cli_support import AZORA, cli_env, wait_healthy
from tests.realtime.js_client import JsClient
from tests.support.server import reserve_port

# Starts processes (servers, the CLI, a browser) or runs long: 120 s (tests/conftest.py).
pytestmark = pytest.mark.slow


@pytest.fixture
def up(own_data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = reserve_port()
    process = subprocess.Popen(
        [str(AZORA), "up", "--workers", "2"],
        env=cli_env(own_data_dir, port) | {"AZORA_LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process, port
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
    process.communicate()


@pytest.fixture
async def clients() -> AsyncIterator[list[JsClient]]:
    started: list[JsClient] = []
    yield started
    for client in started:
        await client.close()


def worker(record: dict[str, str]) -> str:
    """The worker that served a connect (its Engine.IO sid starts `<index>.`)."""
    return record["engine"].split(".", 1)[0]


async def test_stock_client_recovers_all_15_events_against_azora_up_with_two_workers(
    up: tuple[subprocess.Popen[str], int], own_data_dir: Path, clients: list[JsClient]
) -> None:
    process, port = up
    url = f"http://127.0.0.1:{port}"
    await wait_healthy(port, process, timeout_s=90)
    secret = (own_data_dir / "jwt-secret").read_text().strip()
    user = issue_token(secret, sub="u1", role=Role.USER)
    service = {"Authorization": f"Bearer {issue_token(secret, sub='svc', role=Role.SERVICE)}"}

    async with httpx.AsyncClient(base_url=url, headers=service, timeout=30) as http:

        async def alerts(count: int, tag: str) -> list[str]:
            ids = []
            for n in range(count):
                body = {"type": "system.alert", "payload": {"m": f"{tag}{n}"}, "source": "t"}
                response = await http.post("/events", json=body)
                assert response.status_code == 202, response.text
                ids.append(response.json()["id"])
            return ids

        websocket = await JsClient.start(url, user, "websocket", reconnect=True)
        polling = await JsClient.start(url, user, "polling", reconnect=True)
        clients += [websocket, polling]
        for client in clients:
            await client.wait_for("connected")
            assert (await client.send("subscribe", {"types": ["system.alert"]}))["ok"] is True
        before = await alerts(5, "before")
        for client in clients:
            await client.wait_for("event", 5)
            await client.leave()
        away = await alerts(5, "away")
        for client in clients:
            assert (await client.back())["recovered"] is True
        after = await alerts(5, "after")
        for client in clients:
            await client.wait_for("event", 15)
            assert client.ids == before + away + after

        # Again, twice in a row, with the client reconnecting by itself: no other connection
        # comes between, so the round robin hands the two reconnects to different workers.
        meanwhile: list[str] = []
        for number in (3, 4):
            await websocket.command("drop")
            meanwhile += await alerts(5, f"meanwhile{number}")
            connects = await websocket.wait_for("connected", number)
            assert connects[-1]["recovered"] is True
        last = await alerts(1, "last")
        await websocket.wait_for("event", 26)
        assert websocket.ids == before + away + after + meanwhile + last
        assert len([r for r in websocket.records if r["kind"] == "ack"]) == 1
        assert {worker(c) for c in connects[2:]} == {"0", "1"}
