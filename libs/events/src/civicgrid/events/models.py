"""Every event type in one discriminated union, and the one way to load stored JSON."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from civicgrid.events.base import IncidentEvent
from civicgrid.events.incident_events import (
    Accepted,
    Arrived,
    Assigned,
    CallbackRecorded,
    Closed,
    DeadlineExtended,
    Escalated,
    Merged,
    Reassigned,
    Reopened,
    Reported,
    Resolved,
    Resumed,
    Returned,
    SlaBreached,
    SlaClassOrdered,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockStarted,
    SlaClockStopped,
    SlaWarning,
    Suspended,
)
from civicgrid.events.upcasting import UpcastError, upcast

AnyEvent = Annotated[
    Reported
    | Merged
    | Assigned
    | Accepted
    | Arrived
    | Returned
    | Suspended
    | Resumed
    | DeadlineExtended
    | Resolved
    | CallbackRecorded
    | Closed
    | Reopened
    | Reassigned
    | SlaClassOrdered
    | Escalated
    | SlaClockStarted
    | SlaClockStopped
    | SlaWarning
    | SlaBreached
    | SlaClockPaused
    | SlaClockResumed,
    Field(discriminator="event_type"),
]

EVENT_CLASSES: dict[str, type[IncidentEvent]] = {
    cls.model_fields["event_type"].default: cls
    for cls in (
        Reported,
        Merged,
        Assigned,
        Accepted,
        Arrived,
        Returned,
        Suspended,
        Resumed,
        DeadlineExtended,
        Resolved,
        CallbackRecorded,
        Closed,
        Reopened,
        Reassigned,
        SlaClassOrdered,
        Escalated,
        SlaClockStarted,
        SlaClockStopped,
        SlaWarning,
        SlaBreached,
        SlaClockPaused,
        SlaClockResumed,
    )
}

_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


class UnknownEventType(ValueError):
    pass


_CURRENT_VERSIONS: dict[str, int] = {
    event_type: int(cls.model_fields["schema_version"].default)
    for event_type, cls in EVENT_CLASSES.items()
}


def current_version(event_type: str) -> int:
    version = _CURRENT_VERSIONS.get(event_type)
    if version is None:
        raise UnknownEventType(f"unknown event_type {event_type!r}")
    return version


def load_event(data: dict[str, Any]) -> IncidentEvent:
    """Upcast stored JSON to the current schema and validate it.

    Raises UnknownEventType, UpcastError or pydantic.ValidationError: all of them mean
    "this message cannot be handled by this code", which consumers send to the DLQ.
    """
    event_type = data.get("event_type")
    if not isinstance(event_type, str):
        raise UnknownEventType("event has no event_type")
    upgraded = upcast(dict(data), current_version(event_type))
    event: IncidentEvent = _ADAPTER.validate_python(upgraded)
    return event


def load_event_json(raw: bytes) -> IncidentEvent:
    """``load_event`` of JSON bytes. An event at its type's current schema_version (nearly
    all) is parsed and validated in one step by pydantic-core, from the bytes; anything else
    (an older version to upcast, or bad input, to be refused with the same errors as
    ``load_event``) takes the general path."""
    try:
        event: IncidentEvent = _ADAPTER.validate_json(raw)
    except ValidationError:
        pass
    else:
        if event.schema_version == _CURRENT_VERSIONS.get(event.event_type):
            return event
    return _load_event_json_slowly(raw)


def _load_event_json_slowly(raw: bytes) -> IncidentEvent:
    import json

    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError("event JSON must be an object")
    return load_event(data)


__all__ = [
    "EVENT_CLASSES",
    "AnyEvent",
    "UnknownEventType",
    "UpcastError",
    "current_version",
    "load_event",
    "load_event_json",
]
