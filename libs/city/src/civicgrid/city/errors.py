"""Configuration errors that point at the file, the line or feature, and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# An operator fixing a broken config wants to see everything wrong, but not a wall of text.
MAX_PROBLEMS_SHOWN = 30


@dataclass(frozen=True)
class Problem:
    """One thing wrong in one configuration file."""

    file: Path
    reason: str
    subject: str | None = None  # e.g. "matter 'roads.road-damage'", "feature #12 (id 'c01')"
    line: int | None = None  # 1-based

    def __str__(self) -> str:
        parts = [str(self.file)]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.subject:
            parts.append(self.subject)
        return ", ".join(parts) + f": {self.reason}"


class CityConfigError(ValueError):
    """The city configuration cannot be used; ``problems`` lists every finding."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        if not problems:
            raise ValueError("CityConfigError needs at least one problem")
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self._message())

    def _message(self) -> str:
        if len(self.problems) == 1:
            return f"bad city configuration: {self.problems[0]}"
        shown = [f"  - {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        hidden = len(self.problems) - len(shown)
        if hidden:
            shown.append(f"  ... and {hidden} more")
        return f"bad city configuration ({len(self.problems)} problems):\n" + "\n".join(shown)
