"""Helpers for intake's tests (and the lead's end-to-end tests): a small city, keys, places,
and the events routing and SLA would write."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from nats.js import JetStreamContext

from civicgrid.events.base import Actor, ActorKind, UnitKind, UnitRef, utc_now
from civicgrid.events.incident_events import Assigned, HandlingLevel, Jurisdiction, SlaClockStarted
from civicgrid.events.store import EventStore
from civicgrid.intake.access import KeyRing, RateLimit, Rights, dev_rights, hash_key
from civicgrid.intake.catalogue import (
    AttributeDefinition,
    AttributeValue,
    Bounds,
    InMemoryCatalogue,
    Matter,
)
from civicgrid.intake.gazetteer import Gazetteer, Place
from civicgrid.servicekit.settings import ServiceSettings

BOUNDS = Bounds(min_lon=120.40, min_lat=27.40, max_lon=120.80, max_lat=27.70)
DEV_KEY = "dev-key-for-intake-tests"
LIMITED_KEY = "limited-key-citizen-app-only"
THROTTLED_KEY = "throttled-key-two-per-burst"
OPEN311_KEY = "open311-client-key-0001"
MAX_BODY_BYTES = 8 * 1024
GRID = UnitRef(kind=UnitKind.GRID, id="c01-g001", name="一网格")
OTHER_GRID = UnitRef(kind=UnitKind.GRID, id="c01-g002", name="二网格")
DEPARTMENT = UnitRef(kind=UnitKind.DEPARTMENT, id="dept-urban-mgmt", name="综合执法局")
COMMAND_CENTRE = UnitRef(kind=UnitKind.COMMAND_CENTRE, id="command-centre", name="社会治理中心")

POTHOLE = Matter(
    code="roads.pothole",
    name="道路坑洼",
    name_en="Pothole",
    group="道路交通",
    keywords=("坑", "路面"),
    on_site=False,
    duplicate_radius_m=100,
    duplicate_window_minutes=60,
    attributes=(
        AttributeDefinition("depth_cm", "number", required=False, description="深度 Depth"),
        AttributeDefinition(
            "lane",
            "singlevaluelist",
            required=True,
            description="车道 Lane",
            values=(AttributeValue("left", "左"), AttributeValue("right", "右")),
        ),
    ),
)
BLOCKED_DRAIN = Matter(
    code="water.blocked-drain",
    name="下水道堵塞",
    name_en="Blocked drain",
    group="水务",
    keywords=("下水道",),
    on_site=True,
    duplicate_radius_m=50,
    duplicate_window_minutes=120,
)
NEVER_MERGES = Matter(
    code="fuzz.anything",
    name="模糊测试",
    name_en="Fuzzing",
    group="测试",
    keywords=("fuzz",),
    on_site=False,
    duplicate_radius_m=0,
    duplicate_window_minutes=0,
)

_matter_numbers = itertools.count(1)
_places = itertools.count(0)


# Named places of the small city, for Open311 reports that send an address_string only.
PLACES = (
    Place("江滨社区", "community", "c01", 120.70, 27.65),
    Place("一网格", "grid", GRID.id, 120.71, 27.66),
    Place("江滨实验中学", "place", "c01-g009", 120.72, 27.67),
)


def _shipped_sla_classes() -> tuple[str, ...]:
    """The shipped city's SLA class names (its sla.yaml), as the small city's."""
    from civicgrid.city import default_config_dir
    from civicgrid.city.loader import SLA_FILE
    from civicgrid.city.models import SlaPolicy
    from civicgrid.city.yamlfile import read_yaml

    return tuple(read_yaml(default_config_dir() / SLA_FILE).validate(SlaPolicy).classes)


SLA_CLASSES = _shipped_sla_classes()


def small_city() -> InMemoryCatalogue:
    return InMemoryCatalogue(
        [POTHOLE, BLOCKED_DRAIN, NEVER_MERGES],
        BOUNDS,
        gazetteer=Gazetteer(PLACES),
        sla_classes=SLA_CLASSES,
    )


def fresh_matter(catalogue: InMemoryCatalogue, **overrides: Any) -> Matter:
    """A matter of its own, so a test's duplicates never meet another test's incidents."""
    number = next(_matter_numbers)
    fields: dict[str, Any] = {
        "code": f"tests.m{number:04d}",
        "name": f"测试事项{number}",
        "name_en": f"Test matter {number}",
        "group": "测试",
        "keywords": ("测试",),
        "on_site": False,
        "duplicate_radius_m": 100.0,
        "duplicate_window_minutes": 60.0,
    }
    fields.update(overrides)
    matter = Matter(**fields)
    catalogue.add(matter)
    return matter


def next_place() -> tuple[float, float]:
    """A point inside BOUNDS about a kilometre from every other point handed out."""
    n = next(_places)
    columns = 35
    return round(120.42 + 0.01 * (n % columns), 6), round(27.42 + 0.01 * (n // columns % 25), 6)


def north_of(lon: float, lat: float, metres: float) -> tuple[float, float]:
    return lon, lat + metres / 111_195.0


def keys(**extra: Rights) -> KeyRing:
    grants = {hash_key(DEV_KEY): dev_rights()}
    grants.update({hash_key(key): rights for key, rights in extra.items()})
    return KeyRing(grants)


def rights(
    system: str,
    channels: tuple[str, ...] = (),
    commands: tuple[str, ...] = (),
    read_incidents: bool = False,
    per_minute: float | None = None,
    burst: int | None = None,
    units: tuple[str, ...] = ("*",),
) -> Rights:
    limit = RateLimit(per_minute=per_minute, burst=burst) if per_minute else None
    return Rights(
        system, frozenset(channels), frozenset(commands), read_incidents, limit, frozenset(units)
    )


async def assign(
    store: EventStore,
    incident_id: str,
    lead: UnitRef = GRID,
    *,
    on_site: bool = False,
    assignment_no: int = 1,
) -> int:
    """Append what routing would: an assignment to ``lead``. Returns the new version."""
    history = await store.load(incident_id)
    event = Assigned(
        incident_id=incident_id,
        source="routing",
        actor=Actor(kind=ActorKind.SERVICE, id="routing"),
        correlation_id="tests",
        causation_id=history.events[-1].event.event_id,
        level=HandlingLevel.GRID,
        lead_unit=lead,
        sla_class="standard",
        on_site=on_site,
        jurisdiction=Jurisdiction(community_id="c01", grid_id=lead.id),
        rule="tests",
        policy_version=1,
        explanation="assigned by the test, as routing would",
        assignment_no=assignment_no,
    )
    result = await store.append(
        event, msg_id=f"routing:{event.event_id}", expected_version=history.version
    )
    return result.sequence


async def start_clock(
    store: EventStore, incident_id: str, clock: str, due_in: timedelta = timedelta(hours=24)
) -> datetime:
    """Append what the SLA service would: a running clock. Returns its due time."""
    history = await store.load(incident_id)
    now = utc_now()
    event = SlaClockStarted(
        incident_id=incident_id,
        source="sla",
        actor=Actor(kind=ActorKind.SERVICE, id="sla"),
        correlation_id="tests",
        clock=clock,
        sla_class="standard",
        started_at=now,
        due_at=now + due_in,
        warn_at=now + due_in * 0.8,
        clock_version=1,
    )
    await store.append(event, msg_id=f"sla:{event.event_id}", expected_version=history.version)
    return event.due_at


async def stream_messages(js: JetStreamContext) -> int:
    """How many events INCIDENTS holds: a refused request must leave this unchanged."""
    info = await js.stream_info("INCIDENTS")
    return int(info.state.messages)


def intake_settings(url: str, instance: str = "intake-tests") -> ServiceSettings:
    return ServiceSettings(
        service="intake",
        nats_url=url,
        http_host="127.0.0.1",
        http_port=0,
        config_dir=None,
        log_level="INFO",
        instance=instance,
        stream_replicas=1,
    )
