"""`/docs` is served whole from this origin: Swagger UI's script and styles come from the
installed package, so the page works on a machine without internet."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

from httpx import AsyncClient


class _Urls(HTMLParser):
    """Every URL the page loads: src/href attributes and string literals in its scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = tag == "script"
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            for quote in ("'", '"'):
                parts = data.split(quote)[1::2]
                self.urls += [p for p in parts if p.startswith(("/", "http:", "https:", "//"))]


async def test_docs_loads_only_same_origin_urls_and_each_answers(client: AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = _Urls()
    parser.feed(page.text)
    urls = set(parser.urls)
    assert urls, page.text
    off_origin = [u for u in urls if urlsplit(u).netloc or u.startswith("//")]
    assert off_origin == [], off_origin
    kinds = {}
    for url in urls:
        answer = await client.get(url)
        assert answer.status_code == 200, (url, answer.status_code)
        kinds[url.rsplit(".", 1)[-1]] = answer.headers["content-type"].split(";")[0]
    assert kinds["js"] == "text/javascript"
    assert kinds["css"] == "text/css"
    assert kinds["json"] == "application/json"
    assert kinds["png"] == "image/png"
    script = await client.get("/docs/assets/swagger-ui-bundle.js")
    assert b"SwaggerUIBundle" in script.content


async def test_only_the_pages_files_are_served_and_redoc_is_off(client: AsyncClient) -> None:
    for path in ("/docs/assets/index.html", "/docs/assets/..%2F__init__.py", "/redoc"):
        assert (await client.get(path)).status_code == 404, path
    etag = (await client.get("/docs/assets/swagger-ui.css")).headers["etag"]
    again = await client.get("/docs/assets/swagger-ui.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
