"""`GET /console` answers the page without a browser, and every file it loads is served."""

from __future__ import annotations

import json
import re
from pathlib import Path

from httpx import AsyncClient

from azora_nexus.console.assets import assets

ROOT = Path(__file__).parents[2]
VENDORED = "vendor/socket.io.min.js"


def referenced_files(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="/console/([^"]+)"', html)


async def test_console_answers_the_html_page(client: AsyncClient) -> None:
    response = await client.get("/console")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>Azora Nexus console</title>" in response.text
    assert 'id="sign-in-form"' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy


async def test_every_file_the_page_loads_is_served_with_its_type(client: AsyncClient) -> None:
    html = (await client.get("/console")).text
    files = referenced_files(html)
    assert sorted(files) == ["console.css", "console.js", "favicon.svg", VENDORED]
    kinds = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    for name in files:
        response = await client.get(f"/console/{name}")
        assert response.status_code == 200, name
        kind = kinds.get(name[name.rfind(".") :], "image/svg+xml")
        assert response.headers["content-type"] == kind
    # The modules console.js imports are served too.
    script = (await client.get("/console/console.js")).text
    for module in re.findall(r'from "\./([^"]+)"', script):
        assert (await client.get(f"/console/{module}")).status_code == 200, module


async def test_an_unchanged_file_answers_304(client: AsyncClient) -> None:
    first = await client.get("/console/console.js")
    again = await client.get(
        "/console/console.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""


async def test_unknown_console_files_are_404_and_paths_cannot_escape(client: AsyncClient) -> None:
    for name in ("nope.js", "../assets.py", "..%2Fassets.py", "static/console.js", "vendor"):
        response = await client.get(f"/console/{name}")
        assert response.status_code == 404, name
        assert response.json()["error"]["code"] == "not_found"


async def test_a_trailing_slash_leads_to_the_page(client: AsyncClient) -> None:
    response = await client.get("/console/")
    assert response.status_code == 308
    assert response.headers["location"] == "/console"


def test_the_vendored_socket_io_client_is_the_pinned_release_with_its_licence() -> None:
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["socket.io-client"]
    bundle = assets()[VENDORED].body
    assert bundle.startswith(f"/*!\n * Socket.IO v{pinned}\n".encode())
    assert "Released under the MIT License" in bundle[:200].decode()
    assert b"MIT License" in assets()["vendor/socket.io.LICENSE"].body
    installed = ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
    if installed.exists():  # after `npm ci`: byte for byte what npm installs
        assert installed.read_bytes() == bundle
