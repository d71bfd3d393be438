"""The envelope every incident event carries, and the small value types events share."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from civicgrid.events.ids import new_event_id


def _require_timezone(value: datetime) -> datetime:
    # Stored times are UTC; a naive time would silently mean "whatever the server thinks".
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must be timezone-aware")
    return value.astimezone(UTC)


AwareDatetime = Annotated[datetime, AfterValidator(_require_timezone)]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Contract(BaseModel):
    """Frozen; a tolerant reader of fields it does not know.

    A producer one release ahead may add an optional field (an additive change needs no new
    schema_version). Refusing it would send every such event to the DLQ of every consumer
    still on the old release during a rolling upgrade; ignoring it loses nothing they use.
    Changes that alter or remove a field get a new schema_version and an upcaster instead.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")


class ActorKind(StrEnum):
    CITIZEN = "citizen"
    UNIT = "unit"
    SERVICE = "service"
    EXTERNAL_SYSTEM = "external_system"
    SYSTEM = "system"


class Actor(Contract):
    kind: ActorKind
    id: str = Field(min_length=1, max_length=128)

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


class UnitKind(StrEnum):
    GRID = "grid"
    COMMUNITY = "community"
    DEPARTMENT = "department"
    SOCIAL_ORG = "social_org"
    ENTERPRISE = "enterprise"
    UNIVERSITY = "university"
    COMMAND_CENTRE = "command_centre"


class UnitRef(Contract):
    kind: UnitKind
    id: str = Field(min_length=1, max_length=128)
    name: str = ""


class GeoPoint(Contract):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class IncidentEvent(Contract):
    """Base of every event in the INCIDENTS stream.

    Subclasses set ``event_type`` (a Literal, which makes the union discriminated) and
    ``schema_version``; bumping the version means registering an upcaster for the old one.
    """

    event_type: str
    schema_version: int = 1
    event_id: str = Field(default_factory=new_event_id)
    incident_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    occurred_at: AwareDatetime = Field(default_factory=utc_now)
    source: str = Field(min_length=1, max_length=128)
    actor: Actor
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = Field(default=None, max_length=128)

    # Fields that may hold a citizen's personal data; never logged or counted.
    personal_fields: ClassVar[frozenset[str]] = frozenset()
