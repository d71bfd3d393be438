"""Checks a report against the city: a known matter, a place inside the city, a sane time,
and answers to the matter's Open311 attributes. Returns what the ``reported`` event needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from civicgrid.events.incident_events import ScalarValue
from civicgrid.intake.catalogue import AttributeDefinition, Catalogue, Matter
from civicgrid.intake.errors import Problem, invalid
from civicgrid.intake.reports import AttributeAnswer, ReportIn

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_REPORT_AGE = timedelta(days=7)

Answer = ScalarValue | list[str]


@dataclass(frozen=True)
class Admission:
    matter: Matter
    occurred_at: datetime
    attributes: dict[str, Answer]


def admit(report: ReportIn, catalogue: Catalogue, now: datetime) -> Admission:
    """Raises ``Refused`` (422) listing every problem at once."""
    problems: list[Problem] = []
    matter = catalogue.matter(report.category)
    if matter is None:
        problems.append(
            Problem("category", "unknown category; the list is /open311/v2/services.json")
        )
    lon, lat = report.point.lon, report.point.lat
    if not catalogue.bounds.contain(lon, lat) or not catalogue.contains(lon, lat):
        problems.append(Problem("location", "outside the city"))
    occurred_at = report.reported_at or now
    if occurred_at > now + MAX_CLOCK_SKEW:
        problems.append(Problem("reported_at", "is in the future"))
    elif occurred_at < now - MAX_REPORT_AGE:
        problems.append(Problem("reported_at", "is more than 7 days ago"))
    attributes: dict[str, Answer] = {}
    if matter is not None:
        attributes, attribute_problems = check_attributes(matter.attributes, report.attributes)
        problems += attribute_problems
    if problems:
        raise invalid(problems)
    assert matter is not None
    return Admission(matter, occurred_at, attributes)


def check_attributes(
    definitions: tuple[AttributeDefinition, ...], answers: dict[str, AttributeAnswer]
) -> tuple[dict[str, Answer], list[Problem]]:
    by_code = {d.code: d for d in definitions if d.variable}
    problems = [
        Problem(f"attributes.{code}", "is not an attribute of this service")
        for code in answers
        if code not in by_code
    ]
    accepted: dict[str, Answer] = {}
    for code, definition in by_code.items():
        field = f"attributes.{code}"
        answer = answers.get(code)
        if answer is None or answer == "" or answer == []:
            if definition.required:
                problems.append(Problem(field, "is required for this service"))
            continue
        value, reason = _typed(definition, answer)
        if reason is not None:
            problems.append(Problem(field, reason))
        elif value is not None:
            accepted[code] = value
    return accepted, problems


def _typed(
    definition: AttributeDefinition, answer: AttributeAnswer
) -> tuple[Answer | None, str | None]:
    keys = {value.key for value in definition.values}
    datatype = definition.datatype
    if datatype == "multivaluelist":
        chosen = answer if isinstance(answer, list) else [str(answer)]
        unknown = [choice for choice in chosen if choice not in keys]
        return (None, "has values not in the list") if unknown else (list(chosen), None)
    if isinstance(answer, list):
        return None, "takes one value"
    if datatype == "singlevaluelist":
        text = str(answer).lower() if isinstance(answer, bool) else str(answer)
        return (text, None) if text in keys else (None, "is not one of the listed values")
    if datatype == "number":
        return _number(answer)
    if datatype == "datetime":
        try:
            parsed = datetime.fromisoformat(str(answer))
        except ValueError:
            return None, "must be an ISO 8601 date-time"
        if parsed.tzinfo is None:
            return None, "must include a time zone"
        return parsed.isoformat(), None
    if datatype == "string" and isinstance(answer, str) and ("\n" in answer or "\r" in answer):
        return None, "must be a single line"
    return (answer if isinstance(answer, str) else str(answer)), None


def _number(answer: AttributeAnswer) -> tuple[Answer | None, str | None]:
    if isinstance(answer, bool):
        return None, "must be a number"
    if isinstance(answer, int | float):
        return answer, None
    try:
        number = float(str(answer))
    except ValueError:
        return None, "must be a number"
    if number != number or number in (float("inf"), float("-inf")):
        return None, "must be a finite number"
    return (int(number) if number.is_integer() and "." not in str(answer) else number), None
