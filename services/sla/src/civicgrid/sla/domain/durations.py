"""Durations as the SLA policy writes them: ``45s``, ``30m``, ``24h``, ``2d`` or ``5wd``.

Seconds, minutes, hours and days are wall time. Working days (``wd``) are counted by the
calendar. Seconds exist for test policies whose whole ladder runs in a few seconds; the city's
``sla.yaml`` (validated by libs/city) only writes minutes and longer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

_PATTERN = re.compile(r"^(\d+)(s|m|h|d|wd)$")
_SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class SlaDuration:
    """Either wall-clock seconds or a number of working days (exactly one is set)."""

    seconds: int = 0
    working_days: int = 0

    @property
    def is_working_days(self) -> bool:
        return self.working_days > 0

    def as_timedelta(self) -> timedelta:
        if self.is_working_days:
            raise ValueError(f"{self} is counted in working days: ask the calendar")
        return timedelta(seconds=self.seconds)

    def __str__(self) -> str:
        if self.is_working_days:
            return f"{self.working_days}wd"
        for unit in ("h", "m"):
            size = _SECONDS_PER[unit]
            if self.seconds and self.seconds % size == 0:
                return f"{self.seconds // size}{unit}"
        return f"{self.seconds}s"


def parse_sla_duration(text: str) -> SlaDuration:
    """``<n>s|m|h|d`` (wall time) or ``<n>wd`` (working days); refuses anything else."""
    match = _PATTERN.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit, s, m, h, d or wd"
            " (working days), e.g. '30m', '24h', '5wd'"
        )
    amount, unit = int(match.group(1)), match.group(2)
    if unit == "wd":
        return SlaDuration(working_days=amount)
    return SlaDuration(seconds=amount * _SECONDS_PER[unit])
