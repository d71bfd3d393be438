"""Schemathesis against a running service's own OpenAPI document, for the services' tests;
serving an app on a real socket; keeping the document truthful about 422.

Bounded and repeatable: a fixed seed, a few examples per operation and generation mode, no
example database. The checks are the ones that say whether the document tells the truth:
no 5xx, every status documented, every body matching its documented schema. Schemathesis is
a development dependency (the root project's ``dev`` extra), imported only when this runs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI

from civicgrid.servicekit.natsserver import free_port


@dataclass
class ApiCheckReport:
    operations: int = 0
    requests: int = 0
    failures: list[str] = field(default_factory=list)


def check_openapi(
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    max_examples: int = 8,
    seed: int = 20261130,
    negative: bool = True,
) -> ApiCheckReport:
    """Fuzz every operation of ``{base_url}/openapi.json`` (blocking: run it in a thread)."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as fixed_seed
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.result import Err
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    checks = [not_a_server_error, status_code_conformance, response_schema_conformance]
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    modes = [GenerationMode.POSITIVE, GenerationMode.NEGATIVE] if negative else []
    modes = modes or [GenerationMode.POSITIVE]
    report = ApiCheckReport()
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # the document itself is broken for this operation
            report.failures.append(f"invalid operation: {result.err()}")
            continue
        operation = result.ok()
        report.operations += 1
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode)

            @fixed_seed(seed)
            @settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                derandomize=False,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case: Any) -> None:
                report.requests += 1
                case.call_and_validate(
                    base_url=base_url, headers=dict(headers or {}), checks=checks
                )

            try:
                run()
            except (KeyboardInterrupt, SystemExit):
                raise
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
                # An operation with nothing to get wrong (no parameters, no body) has no
                # invalid request to send: nothing to check in this mode.
            except BaseException as exc:  # a failed check (a group): report every operation
                report.failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return report


@asynccontextmanager
async def serving(app: Any, *, within_s: float = 10.0) -> AsyncIterator[str]:
    """``app`` on a real socket in the running loop (its NATS connection lives there), for
    clients that need one (schemathesis, third-party clients). Yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + within_s
    try:
        while not server.started:
            if task.done():
                task.result()  # a failed start raises here
            if time.monotonic() > deadline:
                raise TimeoutError(f"uvicorn did not start within {within_s}s")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def drop_unanswered(app: FastAPI, status: str, path_prefix: str) -> None:
    """FastAPI documents 422 for every operation with parameters; where the service answers
    validation errors with another status (400), remove it so the document tells the truth."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for path, operations in document.get("paths", {}).items():
            if path.startswith(path_prefix):
                for operation in operations.values():
                    operation.get("responses", {}).pop(status, None)
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
