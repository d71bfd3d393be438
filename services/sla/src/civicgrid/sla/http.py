"""sla's own HTTP API (port 8083): clocks, running clocks, the calendar, the last audit.

Errors answer ``{"error": <code>, "detail": <what was wrong>}``:
400 bad_request (a parameter that does not parse), 404 not_found (no such incident),
422 calendar_not_covered (the holiday data lacks a year the answer needs).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from civicgrid.city.workcalendar import MAX_WORKING_DAYS, CalendarNotCovered, WorkingCalendar
from civicgrid.events import subjects
from civicgrid.events.base import UnitRef
from civicgrid.sla.auditor import Auditor, AuditReport
from civicgrid.sla.domain.clocks import Clock, Clocks
from civicgrid.sla.domain.decide import pinned_policy_version, walk
from civicgrid.sla.domain.durations import parse_sla_duration
from civicgrid.sla.handlers import SlaPorts
from civicgrid.sla.read_model import RunningClocks

ClockState = Literal["running", "paused", "stopped"]


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


class ErrorBody(BaseModel):
    error: str
    detail: str


class ClockView(BaseModel):
    incident_id: str
    clock: str
    clock_version: int
    state: ClockState
    sla_class: str
    policy_version: int | None
    duration: str | None
    unit: UnitRef | None
    community_id: str | None
    started_at: datetime
    due_at: datetime
    overdue: bool
    late_s: float
    """How far past the due time (at the stop, the pause, or now); 0 when not late."""
    warnings: int
    breached: bool
    escalation_levels: list[int]
    stop_reason: str | None
    on_time: bool | None

    @classmethod
    def of(cls, clocks: Clocks, clock: Clock, now: datetime) -> ClockView:
        judged_at = clock.stopped_at or clock.paused_at or now
        late = max((judged_at - clock.due_at).total_seconds(), 0.0)
        assignment = clocks.last_assignment
        return cls(
            incident_id=clocks.incident_id,
            clock=clock.name,
            clock_version=clock.version,
            state=clock.status.value,
            sla_class=clock.sla_class,
            policy_version=clock.policy_version,
            duration=clock.duration,
            unit=clock.unit,
            community_id=assignment.jurisdiction.community_id if assignment else None,
            started_at=clock.started_at,
            due_at=clock.due_at,
            overdue=late > 0 and clock.status.value != "stopped",
            late_s=late,
            warnings=clock.warnings,
            breached=clock.breached,
            escalation_levels=sorted({level for level, _ in clock.escalations}),
            stop_reason=clock.stop_reason.value if clock.stop_reason else None,
            on_time=clock.on_time,
        )


class IncidentClocks(BaseModel):
    incident_id: str
    clocks: list[ClockView]


class RunningClocksPage(BaseModel):
    count: int
    clocks: list[ClockView]


class DueAnswer(BaseModel):
    start: datetime
    duration: str
    due_at: datetime
    due_at_local: datetime
    timezone: str


class WorkingDays(BaseModel):
    from_date: date
    to_date: date
    timezone: str
    working_days: list[date]


class AuditView(BaseModel):
    at: datetime | None
    running_clocks: int
    pending_schedules: int
    firings_backlog: int
    repaired: dict[str, int]
    failures: list[str]

    @classmethod
    def of(cls, report: AuditReport) -> AuditView:
        return cls(**report.__dict__)


ERRORS = {
    400: {"model": ErrorBody, "description": "bad_request: a parameter that does not parse"},
    404: {"model": ErrorBody, "description": "not_found: no such incident"},
    422: {"model": ErrorBody, "description": "calendar_not_covered: no holiday data for a year"},
}


def sla_routes(
    ports: SlaPorts,
    view: RunningClocks,
    auditor: Auditor,
    now: Callable[[], datetime],
) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["sla"])
    calendar: WorkingCalendar = ports.calendar

    @router.get(
        "/incidents/{incident_id}/clocks",
        response_model=IncidentClocks,
        responses={k: ERRORS[k] for k in (400, 404)},
        summary="An incident's clocks: due times, state and lateness (from its own history)",
    )
    async def incident_clocks(incident_id: str) -> IncidentClocks:
        try:
            subjects.incident_events(incident_id)
        except subjects.SubjectError as exc:
            raise ApiError(400, "bad_request", str(exc)) from exc
        history = list(await ports.store.load(incident_id))
        if not history:
            raise ApiError(404, "not_found", f"no incident {incident_id}")
        policy = await ports.policies.for_incident(pinned_policy_version(history))
        clocks = walk(incident_id, history, policy, calendar.due).clocks
        moment = now()
        return IncidentClocks(
            incident_id=incident_id,
            clocks=[ClockView.of(clocks, c, moment) for c in clocks.by_name.values()],
        )

    @router.get(
        "/clocks",
        response_model=RunningClocksPage,
        responses={400: ERRORS[400]},
        summary="Running (and paused) clocks, soonest due first; what is about to slip",
    )
    async def running_clocks(
        unit: Annotated[str | None, Query(description="the lead unit's id")] = None,
        community: Annotated[str | None, Query(description="community id")] = None,
        clock: Annotated[Literal["accept", "arrive", "resolve"] | None, Query()] = None,
        overdue: Annotated[bool | None, Query(description="only overdue (or only not)")] = None,
        due_within_s: Annotated[
            float | None, Query(ge=0, description="only clocks due within this many seconds")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> RunningClocksPage:
        moment = now()
        found = [ClockView.of(clocks, c, moment) for clocks, c in view.running()]
        found = [
            v
            for v in found
            if (unit is None or (v.unit is not None and v.unit.id == unit))
            and (community is None or v.community_id == community)
            and (clock is None or v.clock == clock)
            and (overdue is None or v.overdue == overdue)
            and (due_within_s is None or v.due_at <= moment + timedelta(seconds=due_within_s))
        ]
        found.sort(key=lambda v: v.due_at)
        return RunningClocksPage(count=len(found), clocks=found[:limit])

    @router.get(
        "/calendar/due",
        response_model=DueAnswer,
        responses={k: ERRORS[k] for k in (400, 422)},
        summary="When a duration started at a moment is due (the legal working-day rule)",
    )
    async def due(
        start: Annotated[
            str, Query(description="ISO 8601 with an offset, e.g. 2026-09-24T10:00+08:00")
        ],
        duration: Annotated[str, Query(description="30m, 24h, 2d, 5wd, ...")],
    ) -> DueAnswer:
        try:
            started = datetime.fromisoformat(start)
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"start: not an ISO 8601 time: {start!r}") from exc
        if started.tzinfo is None:
            raise ApiError(400, "bad_request", "start: give an offset (e.g. +08:00 or Z)")
        try:
            parsed = parse_sla_duration(duration)
        except ValueError as exc:
            raise ApiError(400, "bad_request", f"duration: {exc}") from exc
        if parsed.working_days > MAX_WORKING_DAYS:
            raise ApiError(400, "bad_request", f"duration: at most {MAX_WORKING_DAYS}wd")
        try:
            due_at = calendar.due(started, parsed)
        except CalendarNotCovered as exc:
            ports.metrics.calendar_errors.inc()
            raise ApiError(422, "calendar_not_covered", str(exc)) from exc
        return DueAnswer(
            start=started,
            duration=str(parsed),
            due_at=due_at,
            due_at_local=due_at.astimezone(calendar.zone),
            timezone=str(calendar.zone),
        )

    @router.get(
        "/calendar/working-days",
        response_model=WorkingDays,
        responses={k: ERRORS[k] for k in (400, 422)},
        summary="The working days between two dates (inclusive), holidays and 调休 applied",
    )
    async def working_days(
        from_: Annotated[date, Query(alias="from", description="YYYY-MM-DD")],
        to: Annotated[date, Query(description="YYYY-MM-DD")],
    ) -> WorkingDays:
        if to < from_:
            raise ApiError(400, "bad_request", "to is before from")
        if (to - from_).days > 366:
            raise ApiError(400, "bad_request", "at most 366 days at a time")
        try:
            days = list(calendar.working_days(from_, to))
        except CalendarNotCovered as exc:
            ports.metrics.calendar_errors.inc()
            raise ApiError(422, "calendar_not_covered", str(exc)) from exc
        return WorkingDays(
            from_date=from_, to_date=to, timezone=str(calendar.zone), working_days=days
        )

    @router.get("/audit", response_model=AuditView, summary="The auditor's last sweep")
    async def audit() -> AuditView:
        return AuditView.of(auditor.last)

    return router


def install_sla_api(
    app: FastAPI,
    ports: SlaPorts,
    view: RunningClocks,
    auditor: Auditor,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    app.include_router(sla_routes(ports, view, auditor, now))

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"error": exc.code, "detail": exc.detail}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in exc.errors()
        )
        return JSONResponse({"error": "bad_request", "detail": problems}, status_code=400)
