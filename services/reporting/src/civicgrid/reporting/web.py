"""The dashboard at ``/``: a static page (vendored nothing) plus the map shapes it draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from civicgrid.reporting.citymap import CityMap

DASHBOARD = Path(__file__).parent / "dashboard"


def install_dashboard(http: FastAPI, city_map: CityMap) -> None:
    @http.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(DASHBOARD / "index.html", media_type="text/html; charset=utf-8")

    http.mount("/dashboard", StaticFiles(directory=DASHBOARD), name="dashboard")

    @http.get("/api/v1/map", tags=["map"], summary="Communities as SVG paths (viewBox units)")
    async def communities() -> dict[str, Any]:
        return city_map.communities

    @http.get(
        "/api/v1/map/communities/{community_id}",
        tags=["map"],
        summary="A community's grids as SVG paths",
        responses={404: {"description": "No such community"}},
    )
    async def grids(community_id: str) -> dict[str, Any]:
        try:
            return city_map.grids(community_id)
        except KeyError:
            raise HTTPException(404, f"no community {community_id!r}") from None
