"""`GET /docs`: Swagger UI over `/openapi.json`, its script and styles served from the
installed `swagger-ui-bundle-v2` package, so the page works on a machine without internet."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from azora_nexus.errors import NotFound

router = APIRouter(include_in_schema=False)

ASSETS_PATH = "/docs/assets"
# The only files the page loads: a fixed list, so a name from the URL is only ever a key.
FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


@dataclass(frozen=True)
class DocsAsset:
    body: bytes
    media_type: str
    etag: str


@cache
def docs_asset(name: str) -> DocsAsset | None:
    """One of the Swagger UI files, read once from the package; None for any other name."""
    media_type = FILES.get(name)
    if media_type is None:
        return None
    body = swagger_ui_path.joinpath(name).read_bytes()
    return DocsAsset(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI for this API; every URL it loads is on this origin."""
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{root}{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_PATH}/favicon-32x32.png",
    )


@router.get(ASSETS_PATH + "/{name}")
async def swagger_ui_asset(request: Request, name: str) -> Response:
    """A file of the Swagger UI page; 404 for anything else."""
    asset = docs_asset(name)
    if asset is None:
        raise NotFound(f"no docs asset {name!r}")
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
