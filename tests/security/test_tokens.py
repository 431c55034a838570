"""A token whose `exp` is a numeric string is refused (on HTTP and Socket.IO), and a short
AZORA_JWT_SECRET stops a production node from starting, in one line."""

from __future__ import annotations

import subprocess
import sys
import time

import jwt
import pytest
import socketio
from httpx import AsyncClient

from azora_nexus.auth.tokens import resolve_secret
from azora_nexus.config import Environment, Settings
from azora_nexus.errors import BadRequest
from tests.conftest import JWT_SECRET
from tests.security.served import Served


def forged(**claims: object) -> str:
    return jwt.encode({"sub": "admin", "role": "admin", **claims}, JWT_SECRET, "HS256")


@pytest.mark.parametrize("exp", [str(int(time.time()) + 3600), True, None])
async def test_an_exp_that_is_not_a_number_is_refused(
    http: AsyncClient, served: Served, exp: object
) -> None:
    token = forged(exp=exp)
    response = await http.get("/cache/stats", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    client = socketio.AsyncClient(reconnection=False)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await client.connect(served.url, auth={"token": token}, transports=["websocket"])
    good = forged(exp=int(time.time()) + 3600)
    ok = await http.get("/cache/stats", headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200


def test_a_short_secret_is_refused_in_production_only(settings: Settings) -> None:
    short = settings.model_copy(update={"jwt_secret": "too-short", "env": Environment.PRODUCTION})
    with pytest.raises(BadRequest, match="at least 32 bytes"):
        resolve_secret(short)
    assert resolve_secret(settings.model_copy(update={"jwt_secret": "too-short"})) == "too-short"
    assert resolve_secret(settings.model_copy(update={"env": Environment.PRODUCTION})) == JWT_SECRET


def test_the_cli_says_so_in_one_line(tmp_path: object) -> None:
    env = {"AZORA_ENV": "production", "AZORA_JWT_SECRET": "short", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-m", "azora_nexus", "token", "--role", "admin"],
        env={**env, "AZORA_DATA_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "AZORA_JWT_SECRET must take at least 32 bytes in production" in done.stderr
