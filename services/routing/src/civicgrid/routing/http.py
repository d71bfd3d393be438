"""Routing's own HTTP API: "where would this go, and why" (the operational routes come from
servicekit). The answer comes from ``route_new_report``, the function the consumer uses."""

from __future__ import annotations

import re
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from civicgrid.events.base import GeoPoint
from civicgrid.events.incident_events import HandlingLevel, Jurisdiction
from civicgrid.routing.domain.city import CityMap, Unit
from civicgrid.routing.domain.decision import Context
from civicgrid.routing.domain.routing import route_new_report
from civicgrid.routing.handlers import PolicySource
from civicgrid.routing.policy import PolicyMissing
from civicgrid.servicekit.apicheck import drop_unanswered

log = structlog.get_logger("civicgrid.routing.http")


class ExplainedUnit(BaseModel):
    kind: str
    id: str
    name: str
    name_en: str

    @classmethod
    def of(cls, unit: Unit) -> ExplainedUnit:
        return cls(kind=unit.kind.value, id=unit.id, name=unit.name, name_en=unit.name_en)


class ExplainedPlace(BaseModel):
    how: str
    micro_grid_id: str | None
    grid_id: str
    community_id: str
    distance_m: float


class Reason(BaseModel):
    en: str
    zh: str


class Explanation(BaseModel):
    category: str
    lon: float
    lat: float
    located: ExplainedPlace | None
    """Where the point falls (None: outside the city and beyond the tolerance)."""
    level: HandlingLevel
    lead_unit: ExplainedUnit
    supporting_units: list[ExplainedUnit]
    sla_class: str
    on_site: bool
    jurisdiction: Jurisdiction
    rule: str
    policy_version: int
    explanation: str
    reasons: list[Reason]


class BadRequest(BaseModel):
    """Every error routing's API answers: one readable line."""

    detail: str


_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": BadRequest, "description": "a parameter is missing or invalid"},
    404: {"model": BadRequest, "description": "no such routing policy version"},
    503: {"model": BadRequest, "description": "the policy store (NATS) is unreachable; retry"},
}


_CODE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


def _shown(value: str) -> str:
    """Error messages quote a submitted value only when it is a well-formed code."""
    return repr(value) if _CODE.match(value) else "(not shown: not a valid code)"


def explain_routes(city: CityMap, policies: PolicySource) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["routing"])

    @router.get(
        "/explain",
        response_model=Explanation,
        responses=_ERRORS,
        summary="Where a report of this category at this point would be assigned, and why",
    )
    async def explain(
        lon: Annotated[float, Query(ge=-180, le=180, description="longitude, WGS84")],
        lat: Annotated[float, Query(ge=-90, le=90, description="latitude, WGS84")],
        category: Annotated[str, Query(min_length=1, max_length=128, description="matter code")],
        policy_version: Annotated[
            int | None, Query(ge=1, description="a published version; default: current")
        ] = None,
    ) -> Explanation:
        if city.matter(category) is None:
            raise HTTPException(
                400,
                f"unknown category {_shown(category)}: it is not in the matter list (matters.yaml)",
            )
        try:
            policy = (
                await policies.version(policy_version)
                if policy_version is not None
                else await policies.current()
            )
        except PolicyMissing as exc:
            raise HTTPException(404, f"no routing policy version {policy_version}") from exc
        except Exception as exc:  # NATS unreachable or timing out: say so, not a bare 500
            log.warning("policy_unavailable", error=type(exc).__name__)
            raise HTTPException(503, "the routing policy cannot be read now; retry") from exc
        decision = route_new_report(Context(city, policy), category, GeoPoint(lon=lon, lat=lat))
        place = decision.place
        return Explanation(
            category=category,
            lon=lon,
            lat=lat,
            located=ExplainedPlace(
                how=place.how,
                micro_grid_id=place.micro_grid_id,
                grid_id=place.grid_id,
                community_id=place.community_id,
                distance_m=round(place.distance_m, 1),
            )
            if place
            else None,
            level=decision.level,
            lead_unit=ExplainedUnit.of(decision.lead),
            supporting_units=[ExplainedUnit.of(unit) for unit in decision.supporting],
            sla_class=decision.sla_class,
            on_site=decision.on_site,
            jurisdiction=decision.jurisdiction,
            rule=decision.rule,
            policy_version=policy.policy_version,
            explanation=decision.explanation,
            reasons=[Reason(en=why.en, zh=why.zh) for why in decision.reasons],
        )

    return router


async def bad_request(_request: Request, exc: Exception) -> JSONResponse:
    """Query validation errors as 400 with one readable line per problem."""
    assert isinstance(exc, RequestValidationError)
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"] if part != "query")
        problems.append(f"{where}: {error['msg']}")
    return JSONResponse({"detail": "; ".join(problems)}, status_code=400)


def install_explain(app: FastAPI, city: CityMap, policies: PolicySource) -> None:
    app.include_router(explain_routes(city, policies))
    app.add_exception_handler(RequestValidationError, bad_request)
    drop_unanswered(app, "422", "/api/v1")  # validation errors are answered with 400
