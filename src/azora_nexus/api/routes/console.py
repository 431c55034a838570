"""`GET /console`: the live console page, and its scripts and styles under `/console/`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from azora_nexus.console.assets import ICON, PAGE, Asset, find_asset
from azora_nexus.errors import NotFound

router = APIRouter(tags=["console"])

# The page keeps an admin token in sessionStorage, so no script but its own may run: no
# inline code, no third-party origin; Socket.IO and fetch go to this origin only.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Revalidated on every load (cheap with the ETag), so a new release is never half-cached.
    "Cache-Control": "no-cache",
}


def answer(request: Request, asset: Asset) -> Response:
    """The asset, or 304 when the browser already holds this version."""
    headers = SECURITY_HEADERS | {"ETag": asset.etag}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


@router.get(
    "/console",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}, "description": "the console page"}},
)
async def console_page(request: Request) -> Response:
    """The live console page (it signs in with an admin token pasted into it)."""
    page = find_asset(PAGE)
    if page is None:  # a broken install: say so rather than answer 500
        raise NotFound("the console page is not installed")
    return answer(request, page)


@router.get("/favicon.ico", include_in_schema=False)
async def favicon(request: Request) -> Response:
    """The console's icon, where browsers look for one by default (an SVG: every current
    browser takes it under this name)."""
    icon = find_asset(ICON)
    if icon is None:
        raise NotFound("the console icon is not installed")
    return answer(request, icon)


@router.get("/console/{name:path}", include_in_schema=False)
async def console_asset(request: Request, name: str) -> Response:
    """One of the page's static files; 404 for anything else."""
    if name in ("", PAGE):
        return RedirectResponse("/console", status_code=308)
    asset = find_asset(name)
    if asset is None:
        raise NotFound(f"no console file {name}")
    return answer(request, asset)
