"""Schemathesis against a running service's own OpenAPI document, for the services' tests.

Bounded and repeatable: a fixed seed, a few examples per operation and generation mode, no
example database. The checks are the ones that say whether the document tells the truth:
no 5xx, every status documented, every body matching its documented schema. Schemathesis is
a development dependency (the root project's ``dev`` extra), imported only when this runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


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
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
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
            except BaseException as exc:  # a failed check (a group): report every operation
                report.failures.append(f"{operation.label} [{mode.value}]: {exc}")
    return report
