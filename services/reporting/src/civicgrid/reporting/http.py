"""The statistics API on 8084: JSON or ``?format=csv`` on every table, and the CSV export."""

from __future__ import annotations

import asyncio
import csv
import io
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine

from civicgrid.city.workcalendar import WorkingCalendar
from civicgrid.reporting import durations, queries
from civicgrid.reporting.admin_auth import ADMIN_ERRORS, require_admin
from civicgrid.reporting.facts import FACT_COLUMNS
from civicgrid.reporting.figures import HEADLINE_TARGET, RATIOS, Dimension, FigureRow, Period

MIN_SEQUENCE_WAIT_S = 5.0
FIGURES_CACHE_SIZE = 64

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "A parameter is malformed (dates, month, format); the detail says which"},
    404: {"description": "No such community"},
    503: {
        "description": "The read model is not open yet, or has not reached ?min_sequence= "
        "within the wait; retry later"
    },
}


DURATIONS_DESCRIPTION = (
    "Accept and arrive count from the first assignment, resolve and close from the report. Each"
    " span is measured in the unit of the clock that governs it (close: the resolve clock). A"
    " clock in wall time (30m, 24h): calendar minutes (count, median_minutes, p90_minutes). A"
    " clock in working days (5wd): working days by the city's calendar, the one sla counts"
    " deadlines with (working_count, median_working_days, p90_working_days): the start's local"
    " day does not count, each later working day counts 00:00-24:00 local (part of one pro"
    " rata), weekends and holidays not at all, so an incident resolved at its 5wd deadline took"
    " 5. The two are never mixed in one median. not_covered: working-day spans ending in a year"
    " the holiday data does not cover, left out. p90 is the nearest rank."
)


class SpanDurations(BaseModel):
    count: int = Field(description="incidents on a wall-time clock with this span")
    median_minutes: float | None = Field(description="calendar minutes")
    p90_minutes: float | None = Field(description="calendar minutes")
    working_count: int = Field(description="incidents on a working-day clock with this span")
    median_working_days: float | None = Field(description="working days (legal counting)")
    p90_working_days: float | None = Field(description="working days (legal counting)")
    not_covered: int = Field(description="working-day spans the holiday data does not cover")


class DurationsRow(BaseModel):
    key: str | None
    name: str | None
    accept: SpanDurations = Field(description="first assignment -> accepted")
    arrive: SpanDurations = Field(description="first assignment -> arrived")
    resolve: SpanDurations = Field(description="report -> resolved")
    close: SpanDurations = Field(description="report -> closed")


class DurationsBody(BaseModel):
    dimension: str
    from_: str | None = Field(alias="from")
    to: str | None
    rows: list[DurationsRow]


class ReadSide(Protocol):
    """What the API reads from: the current read model, and how far it has projected."""

    def engine(self) -> Engine: ...

    async def wait_for(self, sequence: int, timeout_s: float) -> bool: ...

    async def stream_last(self) -> int: ...

    def status(self) -> dict[str, Any]: ...

    async def rebuild(self) -> int: ...


FromParam = Annotated[str | None, Query(alias="from", description="first local day, YYYY-MM-DD")]
ToParam = Annotated[
    str | None, Query(alias="to", description="last local day (inclusive), YYYY-MM-DD")
]
FormatParam = Annotated[str, Query(description="json or csv")]
MinSequence = Annotated[
    int | None, Query(ge=0, description="wait (briefly) until the model reflects this sequence")
]


def _day(text: str | None, name: str) -> date | None:
    if text is None or text == "":
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise HTTPException(400, f"{name} must be a date YYYY-MM-DD, got {text!r}") from None


def _period(start: str | None, end: str | None) -> Period:
    period = Period(_day(start, "from"), _day(end, "to"))
    if period.start and period.end and period.start > period.end:
        raise HTTPException(400, "from is after to")
    return period


def _check_format(fmt: str) -> str:
    if fmt not in ("json", "csv"):
        raise HTTPException(400, f"format must be json or csv, got {fmt!r}")
    return fmt


def figure_table(rows: list[FigureRow], names: dict[str, str]) -> list[dict[str, Any]]:
    table = []
    for row in rows:
        item = row.as_json()
        item["name"] = names.get(row.key or "", row.key)
        table.append(item)
    return table


def _flatten(item: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for name, value in item.items():
        if isinstance(value, dict):
            for part, inner in value.items():
                flat[f"{name}_{part}"] = inner
        else:
            flat[name] = value
    return flat


def csv_response(items: list[dict[str, Any]], filename: str) -> Response:
    flat = [_flatten(item) for item in items]
    buffer = io.StringIO()
    columns: list[str] = []
    for row in flat:
        columns += [c for c in row if c not in columns]
    writer = csv.DictWriter(buffer, fieldnames=columns or ["key"])
    writer.writeheader()
    writer.writerows(flat)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def install_api(
    http: FastAPI,
    side: ReadSide,
    names: dict[str, str],
    communities: dict[str, list[str]],
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    *,
    calendar: WorkingCalendar,
    admin_token: str | None = None,
) -> None:
    """``calendar``: the city's working days, for durations of working-day clocks.
    ``admin_token``: what ``/api/v1/admin/*`` wants as a bearer token; None lets loopback
    callers in without one and refuses everyone else (civicgrid.reporting.admin_auth)."""

    async def ready(min_sequence: int | None) -> Engine:
        try:
            engine = side.engine()
        except RuntimeError as exc:
            raise HTTPException(503, str(exc)) from None
        if min_sequence is not None and min_sequence > await side.stream_last():
            # Waiting would not help: no such event was ever written.
            raise HTTPException(
                400, f"min_sequence {min_sequence} is past the end of the event stream"
            )
        if min_sequence is not None and not await side.wait_for(min_sequence, MIN_SEQUENCE_WAIT_S):
            raise HTTPException(
                503,
                f"the read model is at sequence {side.status()['position']}, "
                f"not yet {min_sequence}; retry",
            )
        return engine

    figures_cache: OrderedDict[tuple[Any, ...], list[FigureRow]] = OrderedDict()

    async def table(
        dimension: Dimension,
        start: str | None,
        end: str | None,
        fmt: str,
        min_sequence: int | None,
        community: str | None = None,
    ) -> Response:
        fmt = _check_format(fmt)
        period = _period(start, end)
        engine = await ready(min_sequence)
        at = now()
        status = side.status()
        # The figures change only when the model moves (or "overdue" crosses a minute): a wall
        # display polling an idle model costs no query. Keyed by generation and position.
        minute = at.replace(second=0, microsecond=0)
        key = (status["generation"], status["position"], dimension, period, community, minute)
        rows = figures_cache.get(key)
        if rows is None:
            rows = await asyncio.to_thread(
                queries.grouped, engine, dimension, period, at, community
            )
            figures_cache[key] = rows
            while len(figures_cache) > FIGURES_CACHE_SIZE:
                figures_cache.popitem(last=False)
        items = figure_table(rows, names)
        if fmt == "csv":
            return csv_response(items, f"{dimension.value}.csv")
        return JSONResponse(
            {
                "dimension": dimension.value,
                "from": start,
                "to": end,
                "headline_target": HEADLINE_TARGET,
                "labels": {r.name: {"zh": r.label_zh, "en": r.label_en} for r in RATIOS},
                "rows": items,
            }
        )

    def add_table(path: str, dimension: Dimension, summary: str) -> None:
        async def endpoint(
            start: FromParam = None,
            end: ToParam = None,
            format: FormatParam = "json",
            min_sequence: MinSequence = None,
        ) -> Response:
            return await table(dimension, start, end, format, min_sequence)

        http.add_api_route(
            path, endpoint, methods=["GET"], summary=summary, responses=ERRORS, tags=["stats"]
        )

    add_table("/api/v1/stats/communities", Dimension.COMMUNITY, "Figures per community")
    add_table("/api/v1/stats/grids", Dimension.GRID, "Figures per grid")
    add_table("/api/v1/stats/units", Dimension.UNIT, "Figures per lead unit")
    add_table("/api/v1/stats/matters", Dimension.MATTER, "Figures per matter")
    add_table("/api/v1/stats/groups", Dimension.GROUP, "Figures per matter group")
    add_table("/api/v1/stats/channels", Dimension.CHANNEL, "Figures per channel")
    add_table("/api/v1/stats/daily", Dimension.DAY, "Figures per local day of report")
    add_table("/api/v1/stats/city", Dimension.CITY, "Figures for the whole city")

    @http.get(
        "/api/v1/stats/communities/{community_id}",
        responses=ERRORS,
        tags=["stats"],
        summary="One community's figures, and its grids'",
    )
    async def one_community(
        community_id: str,
        start: FromParam = None,
        end: ToParam = None,
        min_sequence: MinSequence = None,
    ) -> JSONResponse:
        if community_id not in communities:
            raise HTTPException(404, f"no community {community_id!r}")
        period = _period(start, end)
        engine = await ready(min_sequence)
        at = now()
        total = await asyncio.to_thread(
            queries.grouped, engine, Dimension.COMMUNITY, period, at, community_id
        )
        grids = await asyncio.to_thread(
            queries.grouped, engine, Dimension.GRID, period, at, community_id
        )
        return JSONResponse(
            {
                "community": figure_table(total, names)[0]
                if total
                else {"key": community_id, "name": names.get(community_id), "reported": 0},
                "grids": figure_table(grids, names),
                "grid_ids": communities[community_id],
            }
        )

    @http.get(
        "/api/v1/stats/durations",
        responses={
            200: {
                "model": DurationsBody,
                "description": "Per group and span: calendar minutes for incidents whose clock "
                "runs in wall time, working days for those whose clock runs in working days",
                "content": {"text/csv": {"schema": {"type": "string"}}},
            },
            **ERRORS,
        },
        tags=["stats"],
        summary="Median and p90 time to accept, arrive, resolve and close, per group",
        description=DURATIONS_DESCRIPTION,
    )
    async def spans(
        by: Annotated[str, Query(description="a dimension: community, grid, unit, ...")] = (
            "community"
        ),
        start: FromParam = None,
        end: ToParam = None,
        format: FormatParam = "json",
        min_sequence: MinSequence = None,
    ) -> Response:
        fmt = _check_format(format)
        try:
            dimension = Dimension(by)
        except ValueError:
            known = ", ".join(d.value for d in Dimension)
            raise HTTPException(400, f"by must be one of {known}, got {by!r}") from None
        period = _period(start, end)
        engine = await ready(min_sequence)
        table = await asyncio.to_thread(durations.durations, engine, dimension, period, calendar)
        items = durations.as_rows(table)
        for item in items:
            item["name"] = names.get(item["key"] or "", item["key"])
        if fmt == "csv":
            return csv_response(items, f"durations-{dimension.value}.csv")
        return JSONResponse({"dimension": dimension.value, "from": start, "to": end, "rows": items})

    @http.get("/api/v1/ranking", responses=ERRORS, tags=["stats"], summary="Monthly ranking")
    async def ranking(
        month: Annotated[str, Query(description="YYYY-MM")],
        by: Annotated[str, Query(description="community or unit")] = "community",
        figure: Annotated[str, Query(description="a ratio's name")] = "headline",
        min_sample: Annotated[int, Query(ge=0)] = queries.DEFAULT_MIN_SAMPLE,
        format: FormatParam = "json",
        min_sequence: MinSequence = None,
    ) -> Response:
        fmt = _check_format(format)
        try:
            queries.month_period(month)
        except ValueError:
            raise HTTPException(400, f"month must be YYYY-MM, got {month!r}") from None
        if by not in ("community", "unit"):
            raise HTTPException(400, f"by must be community or unit, got {by!r}")
        if figure not in {r.name for r in RATIOS}:
            raise HTTPException(400, f"unknown figure {figure!r}")
        engine = await ready(min_sequence)
        rows = await asyncio.to_thread(
            queries.ranking,
            engine,
            Dimension(by),
            month,
            now(),
            figure=figure,
            min_sample=min_sample,
        )
        items = [
            {
                "rank": r.rank,
                "key": r.key,
                "name": names.get(r.key or "", r.key),
                "numerator": r.numerator,
                "denominator": r.denominator,
                "ratio": r.ratio,
            }
            for r in rows
        ]
        if fmt == "csv":
            return csv_response(items, f"ranking-{month}.csv")
        return JSONResponse(
            {"month": month, "by": by, "figure": figure, "min_sample": min_sample, "rows": items}
        )

    @http.get(
        "/api/v1/incidents/overdue",
        responses=ERRORS,
        tags=["incidents"],
        summary="Open incidents past their resolve deadline",
    )
    async def overdue(
        community: str | None = None,
        format: FormatParam = "json",
        min_sequence: MinSequence = None,
    ) -> Response:
        fmt = _check_format(format)
        if community is not None and community not in communities:
            raise HTTPException(404, f"no community {community!r}")
        engine = await ready(min_sequence)
        rows = await asyncio.to_thread(queries.overdue, engine, now(), community)
        items = [
            {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
            for row in rows
        ]
        if fmt == "csv":
            return csv_response(items, "overdue.csv")
        return JSONResponse({"rows": items})

    @http.get(
        "/api/v1/export/incidents.csv",
        responses=ERRORS,
        tags=["export"],
        summary="One row per incident with every lifecycle time (streamed)",
        response_class=StreamingResponse,
    )
    async def export(min_sequence: MinSequence = None) -> StreamingResponse:
        engine = await ready(min_sequence)
        return StreamingResponse(
            _csv_lines(engine),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="incidents.csv"'},
        )

    @http.post(
        "/api/v1/admin/rebuild",
        status_code=202,
        tags=["admin"],
        summary="Build a fresh read model from the stream's start; switch to it when caught up",
        responses={503: ERRORS[503], **ADMIN_ERRORS},
        dependencies=[Depends(require_admin(admin_token))],
    )
    async def rebuild() -> dict[str, Any]:
        await ready(None)
        generation = await side.rebuild()
        return {"building": generation, "status": side.status()}

    @http.get("/api/v1/status", tags=["status"], summary="Projection position, lag and phase")
    async def status() -> dict[str, Any]:
        return side.status()


def _csv_lines(engine: Engine) -> Iterator[str]:
    # A sync generator: Starlette runs it in a worker thread, one chunk at a time.
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(FACT_COLUMNS)
    for index, row in enumerate(queries.export_rows(engine), start=1):
        writer.writerow([v.isoformat() if isinstance(v, datetime) else v for v in row])
        if index % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
