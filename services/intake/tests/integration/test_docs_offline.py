"""/docs and /redoc work on a network without the internet: every asset they reference is
served by the service itself, and none is on another host."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
import pytest

# Anything that looks like a URL in the page: attributes, and strings in its inline script.
_URL = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|["'](https?:)?//[^"']+["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_page_loads_nothing_from_another_host(
    http: httpx.AsyncClient, page: str
) -> None:
    response = await http.get(page)
    assert response.status_code == 200
    html = response.text
    assert not re.search(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", html), html
    assets = [m.group(1) for m in _URL.finditer(html) if m.group(1)]
    assert assets, "the page references its assets"
    for asset in assets:
        assert not urlsplit(asset).netloc, asset
        fetched = await http.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 0
    script = "swagger-ui-bundle.js" if page == "/docs" else "redoc.standalone.js"
    assert any(asset.endswith(script) for asset in assets)
