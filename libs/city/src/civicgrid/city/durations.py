"""Durations as written in sla.yaml: ``30m``, ``1h``, ``2d``, ``5wd``.

Minutes, hours and days are calendar time and normalise to minutes. Working days stay working
days: counting them needs the holiday calendar, which is the SLA service's business.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

DurationUnit = Literal["minutes", "working_days"]

_PATTERN = re.compile(r"^(\d+)(m|h|d|wd)$")
_MINUTES_PER = {"m": 1, "h": 60, "d": 24 * 60}


class Duration(BaseModel):
    """A non-negative amount of calendar minutes or of working days."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: int = Field(ge=0)
    unit: DurationUnit

    @property
    def is_working_days(self) -> bool:
        return self.unit == "working_days"

    @property
    def minutes(self) -> int | None:
        """Calendar minutes, or None for a working-day duration."""
        return self.amount if self.unit == "minutes" else None

    @property
    def working_days(self) -> int | None:
        """Working days, or None for a calendar duration."""
        return self.amount if self.unit == "working_days" else None

    def as_timedelta(self) -> timedelta:
        """The calendar length; a working-day duration has none without a calendar."""
        if self.unit == "working_days":
            raise ValueError(f"{self} is counted in working days and needs a holiday calendar")
        return timedelta(minutes=self.amount)

    def __str__(self) -> str:
        if self.unit == "working_days":
            return f"{self.amount}wd"
        if self.amount and self.amount % 60 == 0:
            return f"{self.amount // 60}h"
        return f"{self.amount}m"


def parse_duration(text: str) -> Duration:
    """Parse ``<n>m``, ``<n>h``, ``<n>d`` (calendar) or ``<n>wd`` (working days)."""
    match = _PATTERN.match(text.strip())
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, "
            "m (minutes), h (hours), d (days) or wd (working days), e.g. '30m', '24h', '5wd'"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "wd":
        return Duration(amount=amount, unit="working_days")
    return Duration(amount=amount * _MINUTES_PER[unit], unit="minutes")


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value)
    if isinstance(value, Duration | dict):
        return value
    # A bare number has no unit: minutes or working days? Refuse rather than guess.
    raise ValueError(f"expected a duration such as '30m', '1h' or '5wd', got {value!r}")


DurationText = Annotated[
    Duration, BeforeValidator(_coerce), PlainSerializer(str, return_type=str, when_used="always")
]
"""A Duration field written in configuration as text like ``30m``."""
