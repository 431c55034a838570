"""Nobody can lock someone else out (issue 15, item 5): an attacker's failed sign-ins (from
one address or many) never make the owner's right password answer 429 from an address the
owner signed in from before; a blocked address adds nothing to the account's count, and
an account is delayed, not locked, for unfamiliar addresses."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from httpx import AsyncClient, Response

from azora_nexus.config import Settings
from tests.support.server import serve_node

VICTIM = {"email": "victim@example.com", "username": "victim", "password": "the right one!"}
HOME = "198.51.100.10"  # where the victim signs in from
ATTACKER = "203.0.113.5"


@contextlib.asynccontextmanager
async def node(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A node behind a trusted proxy on 127.0.0.1, so X-Forwarded-For names the client."""
    # A first delay longer than the test, so that what is refused does not depend on speed.
    proxied = settings.model_copy(
        update={"trusted_proxies": "127.0.0.0/8", "login_delay_base_s": 40.0}
    )
    async with serve_node(proxied) as served, AsyncClient(base_url=served.url) as http:
        yield http


async def sign_in(http: AsyncClient, address: str, password: str) -> Response:
    return await http.post(
        "/api/auth/login",
        json={"email": VICTIM["email"], "password": password},
        headers={"X-Forwarded-For": address},
    )


async def test_an_attackers_failures_do_not_lock_the_owner_out(settings: Settings) -> None:
    async with node(settings) as http:
        assert (await http.post("/api/auth/register", json=VICTIM)).status_code == 201
        assert (await sign_in(http, HOME, VICTIM["password"])).status_code == 200

        # One address, guessing as fast as it can: five guesses, then it must wait.
        answers = [await sign_in(http, ATTACKER, "guess") for _ in range(30)]
        assert [a.status_code for a in answers] == [401] * 5 + [429] * 25
        # Many addresses, a few guesses each.
        for n in range(12):
            await sign_in(http, f"203.0.113.{100 + n}", "guess")

        # The owner, from home: in at once (was 429 for 5 minutes after 6 guesses).
        owner = await sign_in(http, HOME, VICTIM["password"])
        assert owner.status_code == 200, owner.text
        # The attacker is told how long to wait, in the error shape.
        assert 30 <= int(answers[-1].headers["Retry-After"]) <= 40
        assert answers[-1].json()["error"]["code"] == "rate_limited"


async def test_an_unfamiliar_address_is_delayed_not_locked(settings: Settings) -> None:
    async with node(settings) as http:
        assert (await http.post("/api/auth/register", json=VICTIM)).status_code == 201
        statuses = [(await sign_in(http, f"203.0.113.{n}", "guess")).status_code for n in range(6)]
        # Five failures are free; then each unfamiliar address waits a delay that doubles
        # (from AZORA_LOGIN_DELAY_BASE_S) after the last counted failure.
        assert statuses == [401] * 5 + [429]
        delayed = await sign_in(http, "192.0.2.1", VICTIM["password"])
        assert delayed.status_code == 429
        assert 30 <= int(delayed.headers["Retry-After"]) <= 40
