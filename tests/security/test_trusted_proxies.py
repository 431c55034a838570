"""`X-Forwarded-For` is believed only from AZORA_TRUSTED_PROXIES (none by default), so a
client cannot rotate it to escape the per-address login limit; behind a listed proxy the
forwarded address is the one counted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from httpx import AsyncClient

from azora_nexus.config import Settings
from tests.support.server import serve_node

PER_ADDRESS = 20  # LoginLimits().per_address


@contextlib.asynccontextmanager
async def node(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A node served with the uvicorn settings `azora up` uses (cli/node.py's node_config)."""
    async with serve_node(settings) as served, AsyncClient(base_url=served.url) as http:
        yield http


async def failed_logins(http: AsyncClient, forwarded_for: list[str]) -> list[int]:
    """One wrong password per forwarded address, each for another account."""
    statuses = []
    for n, address in enumerate(forwarded_for):
        response = await http.post(
            "/api/auth/login",
            json={"email": f"nobody{n}@example.com", "password": "wrong-password"},
            headers={"X-Forwarded-For": address},
        )
        statuses.append(response.status_code)
    return statuses


async def test_a_client_cannot_rotate_its_forwarded_address_by_default(
    settings: Settings,
) -> None:
    rotating = [f"198.51.100.{n}" for n in range(PER_ADDRESS + 2)]
    async with node(settings) as http:
        statuses = await failed_logins(http, rotating)
    assert statuses == [401] * PER_ADDRESS + [429, 429]


async def test_behind_a_trusted_proxy_the_forwarded_address_is_counted(
    settings: Settings,
) -> None:
    trusted = settings.model_copy(update={"trusted_proxies": "127.0.0.0/8"})
    async with node(trusted) as http:
        same = await failed_logins(http, ["198.51.100.7"] * (PER_ADDRESS + 1))
        other = await failed_logins(http, ["198.51.100.8"])
    assert same == [401] * PER_ADDRESS + [429]
    assert other == [401]
