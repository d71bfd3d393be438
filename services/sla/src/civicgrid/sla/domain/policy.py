"""An SLA policy version: deadlines per class, warnings, and the escalation ladder.

Versions are immutable and kept in the ``SLA_POLICY`` bucket (see ``policy_store.py``); each clock
records the version it started under and keeps deciding with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from civicgrid.city.models import SlaPolicy as CitySlaPolicy
from civicgrid.sla.domain.durations import SlaDuration, parse_sla_duration

CLOCKS = ("accept", "arrive", "resolve")


def _coerce(value: Any) -> Any:
    if isinstance(value, SlaDuration):
        return value
    if isinstance(value, str):
        return parse_sla_duration(value)
    raise ValueError(f"expected a duration such as '30m' or '5wd', got {value!r}")


Duration = Annotated[
    SlaDuration, BeforeValidator(_coerce), PlainSerializer(str, return_type=str, when_used="always")
]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


class ClassDeadlines(_Frozen):
    accept: Duration
    arrive: Duration | None = None
    resolve: Duration

    def of(self, clock: str) -> SlaDuration | None:
        value: SlaDuration | None = getattr(self, clock)
        return value


class LadderLevel(_Frozen):
    id: str
    name: str
    after: Duration
    """Counted from the breach, in wall time."""
    notify: str
    """Who is reminded: a role (community_head, department_head, command_centre, ...)."""
    reassign: bool = False
    repeat_every: Duration | None = None
    """Remind again at this interval until the clock stops or the next level is reached."""

    @model_validator(mode="after")
    def _wall_time(self) -> LadderLevel:
        if self.after.is_working_days or (self.repeat_every and self.repeat_every.is_working_days):
            raise ValueError(f"ladder level {self.id!r}: 'after' and 'repeat_every' are wall time")
        if self.repeat_every is not None and self.repeat_every.seconds == 0:
            raise ValueError(f"ladder level {self.id!r}: repeat_every must be longer than zero")
        return self


class SlaPolicyVersion(_Frozen):
    policy_version: int = Field(ge=1)
    warning_ratios: tuple[float, ...] = (0.8,)
    classes: Mapping[str, ClassDeadlines] = Field(min_length=1)
    ladder: tuple[LadderLevel, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> SlaPolicyVersion:
        if any(not 0 < r < 1 for r in self.warning_ratios):
            raise ValueError("warning ratios must be between 0 and 1 (exclusive)")
        if list(self.warning_ratios) != sorted(set(self.warning_ratios)):
            raise ValueError("warning ratios must be ascending and distinct")
        afters = [level.after.seconds for level in self.ladder]
        if afters != sorted(afters):
            raise ValueError("ladder levels must be listed in the order they fire")
        return self

    def deadlines(self, sla_class: str) -> ClassDeadlines:
        found = self.classes.get(sla_class)
        if found is None:
            raise KeyError(f"SLA policy v{self.policy_version} has no class {sla_class!r}")
        return found


def policy_from_city(sla: CitySlaPolicy, version: int = 1) -> SlaPolicyVersion:
    """sla.yaml as policy version ``version``; its single warning_ratio is a list of one."""
    ratios = tuple(getattr(sla, "warning_ratios", ()) or ()) or (sla.warning_ratio,)
    classes = {
        name: ClassDeadlines(
            accept=str(cls.accept),
            arrive=str(cls.arrive) if cls.arrive is not None else None,
            resolve=str(cls.resolve),
        )
        for name, cls in sla.classes.items()
    }
    ladder = tuple(
        LadderLevel(
            id=level.id,
            name=level.name,
            after=str(level.after),
            notify=level.notify,
            reassign=level.reassign,
            repeat_every=(
                str(level.repeat_every) if getattr(level, "repeat_every", None) else None
            ),
        )
        for level in sla.escalation
    )
    return SlaPolicyVersion.model_validate(
        {"policy_version": version, "warning_ratios": ratios, "classes": classes, "ladder": ladder}
    )
