"""Refusals and their one body shape, shared by the native API and the NATS replies.

A refusal names the field and the reason, never the value: a value may be a citizen's name
or phone, and error bodies end up in other systems' logs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError


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


def problems_from(error: ValidationError, *, skip: tuple[str, ...] = ("body",)) -> list[Problem]:
    """Field paths and pydantic's messages only: its default text would echo the input."""
    found: list[Problem] = []
    for item in error.errors(include_url=False, include_input=False, include_context=False):
        location = [str(part) for part in item["loc"] if str(part) not in skip]
        found.append(Problem(".".join(location) or None, item["msg"]))
    return found


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
