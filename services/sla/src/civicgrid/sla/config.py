"""The sla service's configuration: the city's sla.yaml (policy version 1) and calendar.yaml.

A calendar that does not cover the current year fails here, at start, never silently later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from civicgrid.city import default_config_dir, load_city
from civicgrid.city.workcalendar import WorkingCalendar, calendar_from_config
from civicgrid.events.base import UnitKind, UnitRef
from civicgrid.sla.domain.policy import SlaPolicyVersion, policy_from_city

COMMAND_CENTRE = UnitRef(kind=UnitKind.COMMAND_CENTRE, id="command-centre")


@dataclass(frozen=True)
class SlaConfig:
    configured_policy: SlaPolicyVersion
    """sla.yaml as version 1: seeded into the policy bucket when it is empty."""
    calendar: WorkingCalendar
    command_centre: UnitRef


def load_sla_config(config_dir: Path | None, *, now: datetime | None = None) -> SlaConfig:
    city = load_city(config_dir or default_config_dir())
    calendar = calendar_from_config(city.calendar)
    calendar.check_covers([(now or datetime.now(UTC)).year])
    centre = next(
        (
            UnitRef(kind=UnitKind.COMMAND_CENTRE, id=unit.id, name=unit.name)
            for unit in city.units
            if unit.kind == "command_centre"
        ),
        COMMAND_CENTRE,
    )
    return SlaConfig(policy_from_city(city.sla), calendar, centre)
