"""Routing's /docs and /redoc load their assets from routing itself, not from a CDN."""

from __future__ import annotations

import re

import httpx
import pytest

from civicgrid.routing.app import build
from civicgrid.routing.config import load_routing_config
from civicgrid.servicekit.settings import ServiceSettings

_ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_reference_only_routings_own_assets(page: str) -> None:
    settings = ServiceSettings(
        service="routing",
        nats_url="nats://127.0.0.1:1",
        http_host="127.0.0.1",
        http_port=0,
        config_dir=None,
        log_level="WARNING",
        instance="routing-docs",
        stream_replicas=1,
    )
    service = build(settings, config=load_routing_config(None))  # not started: no NATS needed
    transport = httpx.ASGITransport(app=service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        html = (await client.get(page)).text
        assert not re.search(r"(https?:)?//[A-Za-z0-9.-]+\.[A-Za-z]{2,}", html), html
        assets = _ASSET.findall(html)
        assert assets
        for asset in assets:
            assert (await client.get(asset)).status_code == 200, asset
