"""One place that turns refusals into responses, in each face's own error format.

- native API: ``{"status": 422, "code": "invalid", "errors": [{"field", "reason"}]}``
- Open311: the spec's ``[{"code": 400, "description": "..."}]`` (``<errors><error>`` when the
  path ends in ``.xml``), with 400 for bad input, 403 for a missing or wrong api_key, 404 for
  what does not exist, 405 (with ``Allow``) for a method the endpoint does not take.

Echo policy: an error names the field and the reason; it may quote a submitted value only when
that value is an identifier that matched its pattern (``quoted``), never free text or contact
details. Nothing unexpected becomes a 500 with a trace: an infrastructure failure (NATS
unreachable) is a 503 that says to retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from civicgrid.intake.errors import Problem, Refused, problem_of
from civicgrid.intake.metrics import IntakeMetrics
from civicgrid.intake.web.open311_format import error_response, format_of

log = structlog.get_logger("civicgrid.intake.web")

OPEN311_PREFIX = "/open311/"


def is_open311(path: str) -> bool:
    return path.startswith(OPEN311_PREFIX)


def open311_status(status: int) -> int:
    """GeoReport knows 400, 403 and 404 (plus HTTP's own: 405, 409, 413, 429, 503)."""
    if status in (401, 403):
        return 403
    if status in (404, 405, 409, 413, 429, 503):
        return status
    return 400


def render(path: str, refusal: Refused) -> Response:
    if is_open311(path):
        status = open311_status(refusal.status)
        errors = [
            {"code": status, "description": f"{p.field}: {p.reason}" if p.field else p.reason}
            for p in refusal.problems
        ]
        return error_response(format_of(path), errors, status, refusal.headers)
    return JSONResponse(
        refusal.body().model_dump(mode="json"),
        status_code=refusal.status,
        headers=refusal.headers,
    )


def install_error_handlers(app: FastAPI, metrics: IntakeMetrics) -> None:
    async def on_refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        interface = "open311" if is_open311(request.url.path) else "api"
        if exc.status != 409:
            metrics.refusals.labels(interface, str(exc.status)).inc()
        return render(request.url.path, exc)

    async def on_invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if any(tuple(error["loc"]) == ("path", "format") for error in exc.errors()):
            refusal = Refused(404, "not_found", [Problem(None, "not found: use .json or .xml")])
            return await on_refused(request, refusal)
        malformed = [error for error in exc.errors() if error.get("type") == "json_invalid"]
        if malformed:
            reason = json_position(malformed[0], exc.body)
            return await on_refused(request, Refused(400, "bad_request", [Problem(None, reason)]))
        problems = [problem_of(error) for error in exc.errors()]
        return await on_refused(request, Refused(422, "invalid", problems))

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
        reason = str(exc.detail) if exc.detail else "request refused"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names only the methods of the one route it tried; a path served by
            # several routes (GET and POST requests.json) takes all of theirs.
            headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
            reason = f"method not allowed; this endpoint takes {headers['Allow']}"
        refusal = Refused(exc.status_code, code, [Problem(None, reason)], headers=headers)
        return render(request.url.path, refusal)

    app.add_exception_handler(Refused, on_refused)
    app.add_exception_handler(RequestValidationError, on_invalid)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_middleware(ContainFailures)


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def json_position(error: Mapping[str, Any], body: Any) -> str:
    """Where the JSON broke, by line, column and character, instead of a bare offset."""
    location = error.get("loc") or ()
    position = location[-1] if location and isinstance(location[-1], int) else None
    detail = (error.get("ctx") or {}).get("error") or "malformed"
    if position is None:
        return f"the body is not valid JSON: {detail}"
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    before = text[:position]
    line = before.count("\n") + 1
    column = position - (before.rfind("\n") + 1) + 1
    return (
        f"the body is not valid JSON: {detail} at line {line}, column {column}"
        f" (character {position})"
    )


def allowed_methods(request: Request) -> list[str]:
    """The methods some route takes on this path (asked of the router, method by method)."""
    routes: list[BaseRoute] = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(r.matches({**request.scope, "method": method})[0] is Match.FULL for r in routes)
    ]


class ContainFailures:
    """The outermost guard: an unexpected failure (NATS unreachable, a bug) becomes a 503
    that says to retry, logged by its type only. Starlette's own last resort would log the
    exception's message and traceback, and a message can quote what a citizen sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception as exc:
            path = str(scope.get("path", ""))
            log.error("request_failed", path=path, error=type(exc).__name__)
            if started:
                return
            refusal = Refused(
                503, "unavailable", [Problem(None, "intake cannot complete this now; retry")]
            )
            await render(path, refusal)(scope, receive, send)


__all__ = ["ContainFailures", "install_error_handlers", "is_open311", "render"]
