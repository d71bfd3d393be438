"""``POST /api/v1/admin/rebuild`` wants the admin token, or (with none configured) loopback.

A unit test of the HTTP layer over a stand-in read side: what is checked is who gets through to
``rebuild``, not the rebuild itself (test_scripted_city runs a real one).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from civicgrid.city.workcalendar import build_calendar
from civicgrid.reporting.admin_auth import ADMIN_TOKEN_ENV, admin_token
from civicgrid.reporting.http import install_api

TOKEN = "s3cret-admin-token"


class CountingSide:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.rebuilds = 0

    def engine(self) -> Engine:
        return self._engine

    async def wait_for(self, sequence: int, timeout_s: float) -> bool:
        return True

    async def stream_last(self) -> int:
        return 0

    def status(self) -> dict[str, Any]:
        return {"generation": 1, "position": 0, "lag": 0, "caught_up": True, "rebuild": {}}

    async def rebuild(self) -> int:
        self.rebuilds += 1
        return 2


def client(app: FastAPI, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://reporting")


@pytest.fixture
def sqlite_engine(tmp_path: Any) -> Engine:
    from civicgrid.reporting.database import open_database

    return open_database(f"sqlite:///{tmp_path / 'reporting.sqlite'}")


def make_app(engine: Engine, token: str | None) -> tuple[FastAPI, CountingSide]:
    app = FastAPI()
    side = CountingSide(engine)
    calendar = build_calendar("Asia/Shanghai", "chinese-calendar")
    install_api(app, side, {}, {}, calendar=calendar, admin_token=token)
    return app, side


async def test_with_a_token_no_header_is_401_a_wrong_one_403_the_right_one_202(
    sqlite_engine: Engine,
) -> None:
    app, side = make_app(sqlite_engine, TOKEN)
    # Loopback gets no pass once a token is configured.
    async with client(app, "127.0.0.1") as http:
        missing = await http.post("/api/v1/admin/rebuild")
        assert missing.status_code == 401, missing.text
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await http.post(
            "/api/v1/admin/rebuild", headers={"Authorization": f"Bearer {TOKEN}x"}
        )
        assert wrong.status_code == 403, wrong.text
        assert side.rebuilds == 0
        right = await http.post(
            "/api/v1/admin/rebuild", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert right.status_code == 202, right.text
        assert right.json()["building"] == 2
    async with client(app, "10.1.2.3") as http:
        remote = await http.post(
            "/api/v1/admin/rebuild", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert remote.status_code == 202, remote.text
    assert side.rebuilds == 2


async def test_without_a_token_only_loopback_may_rebuild(sqlite_engine: Engine) -> None:
    app, side = make_app(sqlite_engine, None)
    async with client(app, "10.1.2.3") as http:
        refused = await http.post(
            "/api/v1/admin/rebuild", headers={"Authorization": "Bearer anything"}
        )
        assert refused.status_code == 403, refused.text
        assert ADMIN_TOKEN_ENV in refused.json()["detail"]
    assert side.rebuilds == 0
    for host in ("127.0.0.1", "::1"):
        async with client(app, host) as http:
            response = await http.post("/api/v1/admin/rebuild")
            assert response.status_code == 202, (host, response.text)
    assert side.rebuilds == 2


def test_the_openapi_document_names_the_scheme_and_both_refusals(sqlite_engine: Engine) -> None:
    app, _ = make_app(sqlite_engine, TOKEN)
    document = app.openapi()
    operation = document["paths"]["/api/v1/admin/rebuild"]["post"]
    assert {"401", "403", "503"} <= set(operation["responses"])
    assert operation["security"] == [{"adminToken": []}]
    scheme = document["components"]["securitySchemes"]["adminToken"]
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    # Reads stay open: only admin routes carry the scheme.
    assert "security" not in document["paths"]["/api/v1/stats/communities"]["get"]


def test_a_blank_token_counts_as_none() -> None:
    assert admin_token({ADMIN_TOKEN_ENV: "  "}) is None
    assert admin_token({}) is None
    assert admin_token({ADMIN_TOKEN_ENV: " t0k "}) == "t0k"
