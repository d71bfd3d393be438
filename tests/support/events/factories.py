"""Small builders for events in tests: a valid event with only what the test cares about."""

from __future__ import annotations

from typing import Any

from civicgrid.events.base import Actor, ActorKind, GeoPoint, UnitKind, UnitRef
from civicgrid.events.ids import new_incident_id
from civicgrid.events.incident_events import Accepted, Channel, ReportDetails, Reported, Reporter

SYSTEM = Actor(kind=ActorKind.SYSTEM, id="tests")
GRID_UNIT = UnitRef(kind=UnitKind.GRID, id="c01-g001", name="Grid 1")


def reported(incident_id: str | None = None, **overrides: Any) -> Reported:
    fields: dict[str, Any] = {
        "incident_id": incident_id or new_incident_id(),
        "source": "tests",
        "actor": SYSTEM,
        "correlation_id": "corr-1",
        "report": ReportDetails(
            channel=Channel.CITIZEN_APP,
            category="city-appearance.illegal-parking",
            description="a car on the pavement",
            location=GeoPoint(lon=120.55, lat=27.55),
            reporter=Reporter(name="张三", phone="13800000000"),
        ),
    }
    fields.update(overrides)
    return Reported(**fields)


def accepted(incident_id: str, **overrides: Any) -> Accepted:
    fields: dict[str, Any] = {
        "incident_id": incident_id,
        "source": "tests",
        "actor": Actor(kind=ActorKind.UNIT, id=GRID_UNIT.id),
        "correlation_id": "corr-1",
        "unit": GRID_UNIT,
    }
    fields.update(overrides)
    return Accepted(**fields)
