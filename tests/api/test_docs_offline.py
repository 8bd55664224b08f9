"""/docs and /redoc work on an air-gapped site: every script, style and icon they name is served here."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest


class _AssetLinks(HTMLParser):
    """The URLs a page makes the browser fetch: script src, link href, img src."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and (tag, name) in {("script", "src"), ("link", "href"), ("img", "src")}:
                self.urls.append(value)


def _page_assets(html: str) -> list[str]:
    parser = _AssetLinks()
    parser.feed(html)
    # Swagger UI takes its stylesheet and script URLs from the page's inline script too.
    inline = re.findall(r"""(?:url|href|src)\s*[:=]\s*['"]([^'"]+)['"]""", html)
    return parser.urls + inline


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_api_documentation_names_only_local_assets_and_they_answer(client, page: str) -> None:
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?://", r.text), "the page names a remote URL: blank on an air-gapped site"
    assets = _page_assets(r.text)
    scripts = [u for u in assets if u.endswith(".js")]
    assert scripts, f"{page} names no script: {assets}"
    for url in assets:
        assert url.startswith("/"), f"{page} names {url}, which is not served by this site"
        fetched = client.get(url)
        assert fetched.status_code == 200, f"{url}: {fetched.status_code}"
        if url.endswith(".js"):
            assert len(fetched.content) > 100_000  # the real bundle, not an empty stand-in
    assert client.get("/openapi.json").json()["info"]["title"] == "Device Factory"


def test_swagger_ui_oauth2_redirect_page_is_served(client) -> None:
    r = client.get("/docs/oauth2-redirect")
    assert r.status_code == 200 and "oauth2" in r.text.lower()
