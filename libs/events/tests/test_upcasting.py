"""Old schema versions load into the current models."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from civicgrid.events.incident_events import Reported
from civicgrid.events.models import UnknownEventType, load_event, load_event_json
from civicgrid.events.upcasting import UpcastError

V1_REPORTED = {
    "event_type": "reported",
    "schema_version": 1,
    "event_id": "01J0000000000000000000000A",
    "incident_id": "01J0000000000000000000000B",
    "occurred_at": "2026-09-24T02:00:00+00:00",
    "source": "intake",
    "actor": {"kind": "citizen", "id": "anonymous"},
    "correlation_id": "c1",
    "channel": "hotline_12345",
    "external_ref": "12345-2026-000001",
    "category": "roads.pothole",
    "description": "深坑",
    "lon": 120.56,
    "lat": 27.57,
    "reporter_name": "李四",
    "reporter_phone": "13900000000",
}


def test_a_v1_reported_event_loads_as_the_current_model() -> None:
    event = load_event(dict(V1_REPORTED))
    assert isinstance(event, Reported)
    assert event.schema_version == 2
    assert event.report.channel == "hotline_12345"
    assert event.report.location.lon == pytest.approx(120.56)
    assert event.report.reporter is not None
    assert event.report.reporter.phone == "13900000000"
    assert event.report.external_ref == "12345-2026-000001"


def test_a_current_event_round_trips_unchanged() -> None:
    event = load_event(dict(V1_REPORTED))
    again = load_event(event.model_dump(mode="json"))
    assert again == event


def test_a_version_newer_than_the_code_is_refused() -> None:
    with pytest.raises(UpcastError, match="newer"):
        load_event({**V1_REPORTED, "schema_version": 9})


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType):
        load_event({**V1_REPORTED, "event_type": "teleported"})


def test_a_naive_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        load_event({**V1_REPORTED, "occurred_at": "2026-09-24T10:00:00"})


def test_a_field_added_by_a_newer_producer_is_ignored_not_refused() -> None:
    current = load_event(dict(V1_REPORTED)).model_dump(mode="json")
    current["priority_hint"] = "high"  # an optional field a later release might add
    event = load_event(current)
    assert isinstance(event, Reported)
    assert "priority_hint" not in event.model_dump()


# load_event_json: the bytes path consumers use (current versions parsed by pydantic-core in
# one step); it must load and refuse exactly as load_event does.


def as_bytes(data: dict[str, object]) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode()


def test_from_bytes_an_old_version_is_upcast_and_a_current_one_equals_load_event() -> None:
    old = load_event_json(as_bytes(V1_REPORTED))
    assert old == load_event(dict(V1_REPORTED))
    current = old.model_dump(mode="json")
    assert load_event_json(as_bytes(current)) == load_event(current) == old


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"schema_version": 9}, UpcastError, "newer"),
        ({"event_type": "teleported"}, UnknownEventType, "teleported"),
        ({"occurred_at": "2026-09-24T10:00:00"}, ValidationError, "timezone"),
    ],
)
def test_from_bytes_what_load_event_refuses_is_refused_alike(
    change: dict[str, object], error: type[Exception], match: str
) -> None:
    current = load_event(dict(V1_REPORTED)).model_dump(mode="json")
    with pytest.raises(error, match=match):
        load_event_json(as_bytes({**current, **change}))


def test_from_bytes_not_json_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        load_event_json(b"{not json")
    with pytest.raises(ValueError, match="must be an object"):
        load_event_json(b"[1, 2]")
