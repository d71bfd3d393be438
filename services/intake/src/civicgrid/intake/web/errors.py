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

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from civicgrid.intake.errors import Problem, Refused
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
        malformed = any(error.get("type") == "json_invalid" for error in exc.errors())
        problems = [
            Problem(
                ".".join(str(p) for p in error["loc"] if p != "body") or None,
                str(error.get("msg", "invalid")),
            )
            for error in exc.errors()
        ]
        status = 400 if malformed else 422
        return await on_refused(
            request, Refused(status, "bad_request" if malformed else "invalid", problems)
        )

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
