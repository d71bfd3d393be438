"""Identifiers: ULIDs sort by creation time, which keeps subjects and logs readable."""

from ulid import ULID


def new_incident_id() -> str:
    return str(ULID())


def new_event_id() -> str:
    return str(ULID())
