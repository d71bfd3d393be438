"""Refusals and their one body shape, shared by the native API and the NATS replies.

A refusal names the field and the reason. It quotes a submitted value only when the value is
an identifier matching ``_IDENTIFIER`` (a service code, a request id, a jurisdiction id): free
text may be a citizen's name or phone, and error bodies end up in other systems' logs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

_IDENTIFIER = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def quoted(value: str) -> str:
    """A submitted value as an error may show it (the echo policy above)."""
    return repr(value) if _IDENTIFIER.match(value) else "(not shown: not a valid identifier)"


@dataclass(frozen=True)
class Problem:
    field: str | None
    reason: str


class ProblemOut(BaseModel):
    field: str | None = None
    reason: str


class ErrorBody(BaseModel):
    """Every 4xx of the native API, and the ``error`` of a NATS reply."""

    status: int
    code: str
    errors: list[ProblemOut]

    @property
    def reason(self) -> str:
        return "; ".join(f"{p.field}: {p.reason}" if p.field else p.reason for p in self.errors)


class Refused(Exception):
    """A request intake will not carry out; ``status`` is the HTTP status it maps to."""

    def __init__(
        self,
        status: int,
        code: str,
        problems: Sequence[Problem],
        *,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__("; ".join(p.reason for p in problems))
        self.status = status
        self.code = code
        self.problems = list(problems)
        self.headers = headers or {}

    def body(self) -> ErrorBody:
        return ErrorBody(
            status=self.status,
            code=self.code,
            errors=[ProblemOut(field=p.field, reason=p.reason) for p in self.problems],
        )


def invalid(problems: Iterable[Problem]) -> Refused:
    return Refused(422, "invalid", list(problems))


def bad_request(reason: str, field: str | None = None) -> Refused:
    return Refused(400, "bad_request", [Problem(field, reason)])


def not_found(reason: str, field: str | None = None) -> Refused:
    return Refused(404, "not_found", [Problem(field, reason)])


def unauthorized(reason: str) -> Refused:
    return Refused(401, "unauthorized", [Problem("api_key", reason)])


def forbidden(reason: str) -> Refused:
    return Refused(403, "forbidden", [Problem("api_key", reason)])


def too_large(limit: int) -> Refused:
    return Refused(413, "too_large", [Problem(None, f"the body is larger than {limit} bytes")])


def rate_limited(retry_after_s: float) -> Refused:
    seconds = max(1, int(retry_after_s + 0.999))
    return Refused(
        429,
        "rate_limited",
        [Problem("api_key", f"rate limit reached; retry in {seconds} s")],
        headers={"Retry-After": str(seconds)},
    )


def rejected(reason: str) -> Refused:
    """The command does not fit the incident's state (409)."""
    return Refused(409, "rejected", [Problem(None, reason)])


def readable(item: Mapping[str, Any]) -> str:
    """Pydantic's message, in words a person uses, without the submitted value: a length
    limit in characters for text (pydantic says "items" when a validator runs first)."""
    kind = item.get("type")
    context = item.get("ctx") or {}
    is_text = isinstance(item.get("input"), str)
    if kind == "too_long" and "max_length" in context:
        unit = "characters" if is_text else "items"
        return f"at most {context['max_length']} {unit}"
    if kind == "too_short" and "min_length" in context:
        if context["min_length"] == 1:
            return "must not be empty"
        unit = "characters" if is_text else "items"
        return f"at least {context['min_length']} {unit}"
    if kind == "union_tag_invalid" and "expected_tags" in context:
        return f"must be one of {context['expected_tags']}"
    if kind == "extra_forbidden":
        return "is not a field of this body"
    return str(item.get("msg", "invalid"))


def field_path(location: Sequence[Any], skip: Iterable[str] = ("body",)) -> str | None:
    """``body.citizen_app.description`` -> ``description``: the union's tag is not a field."""
    skipped = set(skip)
    parts = [str(part) for part in location if str(part) not in skipped]
    if parts and parts[0] in REPORT_TAGS:
        parts = parts[1:]
    return ".".join(parts) or None


# The native report union's discriminator values (channels), which pydantic puts in the path.
REPORT_TAGS = frozenset(
    {
        "hotline_12345",
        "police_110",
        "iot_sensor",
        "video_ai",
        "grid_patrol",
        "citizen_app",
        "open311",
    }
)


def key_reused(key: str) -> Refused:
    """The idempotency key was used before for a different command or body (422)."""
    return Refused(
        422,
        "idempotency_key_reused",
        [
            Problem(
                "Idempotency-Key",
                f"key {key!r} was already used for a different command or body;"
                " use a new key for a new request",
            )
        ],
    )


def problems_from(error: ValidationError, *, skip: tuple[str, ...] = ("body",)) -> list[Problem]:
    """Field paths and readable reasons only: pydantic's default text would echo the input."""
    items = error.errors(include_url=False, include_input=True, include_context=True)
    return [problem_of(item, skip) for item in items]


def problem_of(item: Mapping[str, Any], skip: Iterable[str] = ("body",)) -> Problem:
    field = field_path(item["loc"], skip)
    if field is None and item.get("type") in ("union_tag_invalid", "union_tag_not_found"):
        field = str((item.get("ctx") or {}).get("discriminator", "")).strip("'") or None
    return Problem(field, readable(item))
