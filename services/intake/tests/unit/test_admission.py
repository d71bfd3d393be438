"""A report is checked against the city: matter, place, time, Open311 attributes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from civicgrid.intake.admission import admit
from civicgrid.intake.errors import Refused
from civicgrid.intake.reports import CitizenAppReport
from tests.support.intake import POTHOLE, small_city

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def report(**overrides: Any) -> CitizenAppReport:
    fields: dict[str, Any] = {
        "category": POTHOLE.code,
        "location": {"lon": 120.5, "lat": 27.5},
        "attributes": {"lane": "left"},
    }
    fields.update(overrides)
    return CitizenAppReport.model_validate(fields)


def problems(**overrides: Any) -> dict[str | None, str]:
    with pytest.raises(Refused) as caught:
        admit(report(**overrides), small_city(), NOW)
    assert caught.value.status == 422
    return {p.field: p.reason for p in caught.value.problems}


def test_a_good_report_is_admitted_with_typed_attributes() -> None:
    admission = admit(report(attributes={"lane": "right", "depth_cm": "12"}), small_city(), NOW)
    assert admission.attributes == {"lane": "right", "depth_cm": 12}
    assert admission.occurred_at == NOW


def test_every_problem_is_named_at_once() -> None:
    found = problems(
        category="roads.unknown",
        location={"lon": 100.0, "lat": 27.5},
        reported_at=(NOW + timedelta(hours=1)).isoformat(),
    )
    assert set(found) == {"category", "location", "reported_at"}


@pytest.mark.parametrize(
    ("attributes", "field", "reason"),
    [
        ({}, "attributes.lane", "required"),
        ({"lane": "middle"}, "attributes.lane", "not one of"),
        ({"lane": "left", "depth_cm": "deep"}, "attributes.depth_cm", "number"),
        ({"lane": "left", "colour": "red"}, "attributes.colour", "not an attribute"),
        ({"lane": ["left", "right"]}, "attributes.lane", "one value"),
    ],
)
def test_attributes_follow_the_service_definition(
    attributes: dict[str, Any], field: str, reason: str
) -> None:
    assert reason in problems(attributes=attributes)[field]


def test_a_report_older_than_a_week_is_refused() -> None:
    assert "7 days" in problems(reported_at=(NOW - timedelta(days=8)).isoformat())["reported_at"]
