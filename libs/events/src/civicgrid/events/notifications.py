"""Messages on ``notify.<unit_kind>.<unit_id>``: a unit is reminded of a deadline.

Published by the sla service (core NATS, not stored) after the warning, breach or escalation it
announces is stored in the incident's history, which stays the record.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from civicgrid.events.base import AwareDatetime, Contract, UnitRef, utc_now


class SlaNotification(Contract):
    kind: Literal["sla_warning", "sla_breached", "escalated"]
    incident_id: str = Field(min_length=1, max_length=64)
    clock: str
    clock_version: int = Field(ge=1)
    due_at: AwareDatetime
    late_s: float = Field(ge=0)
    """How late the clock is (0 for a warning)."""
    unit: UnitRef
    """Who is notified."""
    ladder_level: int | None = None
    ladder_name: str | None = None
    notify_role: str | None = None
    repeat: int = 0
    request_reassignment: bool = False
    event_id: str
    """The stored event this notification announces."""
    sent_at: AwareDatetime = Field(default_factory=utc_now)
