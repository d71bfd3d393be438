"""The city's YAML configuration as frozen models: units, matters, SLA, calendar, routing.

Each model checks what it can see on its own; rules that span files (does this unit exist, is
this matter transferred to that organisation) live in the loader.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

from civicgrid.city.durations import Duration, DurationText

Identifier = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]
"""Group codes and ladder level ids: lower-case ascii words joined by hyphens."""

SafeId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
"""Unit and area ids: safe as a NATS subject token and in a URL path (no dots, no spaces)."""

Key = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
"""SLA class names and Open311 attribute codes: snake_case."""

MatterCode = Annotated[str, Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$")]
"""``<group>.<matter>``, e.g. ``city-appearance.illegal-parking``."""

Text = Annotated[str, Field(min_length=1)]

UnitKind = Literal[
    "department", "command_centre", "social_org", "enterprise", "university", "community", "grid"
]
HandlingLevel = Literal["grid", "community", "department", "social_org", "command_centre"]
Open311Datatype = Literal[
    "string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"
]

SOCIAL_KINDS: frozenset[str] = frozenset({"social_org", "enterprise", "university"})
"""Unit kinds that receive transferred matters (社会组织、企业、高校)."""

CONFIGURED_KINDS: frozenset[str] = frozenset({"department", "command_centre"} | SOCIAL_KINDS)
"""Unit kinds that units.yaml declares; communities and grids come from city.geojson."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _duplicates(values: tuple[str, ...]) -> list[str]:
    return sorted(value for value, count in Counter(values).items() if count > 1)


class Unit(_Frozen):
    """Anyone an incident can be assigned to."""

    id: SafeId
    kind: UnitKind
    name: Text
    name_en: Text
    matters: tuple[MatterCode, ...] = ()
    """Codes of the matters transferred to this unit (social organisations only)."""

    @property
    def is_social(self) -> bool:
        """A social organisation, enterprise or university."""
        return self.kind in SOCIAL_KINDS

    @model_validator(mode="after")
    def _check(self) -> Unit:
        if self.matters and not self.is_social:
            raise ValueError(
                f"a {self.kind} takes no transferred matters; only social organisations, "
                "enterprises and universities do"
            )
        if dup := _duplicates(self.matters):
            raise ValueError(f"matters listed twice: {', '.join(dup)}")
        return self


class UnitsFile(_Frozen):
    units: tuple[Unit, ...] = Field(min_length=1)


class AttributeValue(_Frozen):
    key: Text
    name: Text


class MatterAttribute(_Frozen):
    """An Open311 GeoReport v2 service-definition attribute."""

    code: Key
    datatype: Open311Datatype
    required: StrictBool
    description: Text
    datatype_description: str | None = None
    order: StrictInt | None = None
    variable: StrictBool = True
    values: tuple[AttributeValue, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> MatterAttribute:
        is_list = self.datatype in ("singlevaluelist", "multivaluelist")
        if is_list and not self.values:
            raise ValueError(f"a {self.datatype} attribute needs values")
        if not is_list and self.values:
            raise ValueError(f"a {self.datatype} attribute takes no values")
        if dup := _duplicates(tuple(v.key for v in self.values)):
            raise ValueError(f"value keys listed twice: {', '.join(dup)}")
        return self


class MatterGroup(_Frozen):
    code: Identifier
    name: Text
    name_en: Text


class Matter(_Frozen):
    """One category of the matter list (事项清单), also an Open311 service.

    At ``department`` and ``social_org`` level ``lead_unit`` is the responsible unit. At
    ``grid`` and ``community`` level the location decides who leads; ``lead_unit``, if given,
    is the unit that answers when the community blows the whistle (吹哨). At
    ``command_centre`` level it may name the command centre or be left out.
    """

    code: MatterCode
    name: Text
    name_en: Text
    group: Identifier
    keywords: tuple[Text, ...] = Field(min_length=1)
    handling_level: HandlingLevel
    lead_unit: SafeId | None = None
    supporting_units: tuple[SafeId, ...] = ()
    fallback_units: tuple[SafeId, ...] = ()
    """Ordered candidates when the lead returns the matter as not its duty."""
    on_site: StrictBool
    sla_class: Key
    duplicate_radius_m: StrictInt = Field(ge=0)
    """Reports of this matter within this radius may merge; 0 never merges."""
    duplicate_window_minutes: StrictInt = Field(ge=0)
    attributes: tuple[MatterAttribute, ...] = ()

    @property
    def merges_duplicates(self) -> bool:
        return self.duplicate_radius_m > 0 and self.duplicate_window_minutes > 0

    @model_validator(mode="after")
    def _check(self) -> Matter:
        prefix = self.code.split(".", 1)[0]
        if prefix != self.group:
            raise ValueError(f"code {self.code!r} should start with its group {self.group!r}")
        if self.handling_level in ("department", "social_org") and self.lead_unit is None:
            raise ValueError(f"a {self.handling_level}-level matter needs a lead_unit")
        if self.lead_unit is not None and self.lead_unit in self.supporting_units:
            raise ValueError(f"lead_unit {self.lead_unit!r} is also a supporting unit")
        if self.lead_unit is not None and self.lead_unit in self.fallback_units:
            raise ValueError(f"lead_unit {self.lead_unit!r} is also a fallback unit")
        for name, units in (
            ("supporting", self.supporting_units),
            ("fallback", self.fallback_units),
        ):
            if dup := _duplicates(units):
                raise ValueError(f"{name} units listed twice: {', '.join(dup)}")
        if dup := _duplicates(tuple(a.code for a in self.attributes)):
            raise ValueError(f"attribute codes listed twice: {', '.join(dup)}")
        return self


class MattersFile(_Frozen):
    groups: tuple[MatterGroup, ...] = Field(min_length=1)
    matters: tuple[Matter, ...] = Field(min_length=1)


class SlaClass(_Frozen):
    """Deadlines of one service level, each counted from when its clock starts."""

    name: Text
    name_en: Text
    accept: DurationText
    arrive: DurationText | None = None
    """Only for on-site matters: someone must be there within this time."""
    resolve: DurationText

    @model_validator(mode="after")
    def _check(self) -> SlaClass:
        for clock in ("accept", "arrive", "resolve"):
            value: Duration | None = getattr(self, clock)
            if value is not None and value.amount == 0:
                raise ValueError(f"{clock} must be longer than zero")
        return self


class EscalationLevel(_Frozen):
    """One rung of the ladder, reached ``after`` this long past the breach."""

    id: Identifier
    name: Text
    name_en: Text
    after: DurationText
    notify: Key
    reassign: StrictBool = False
    """Ask routing to move the incident one level up (grid -> community -> department)."""
    repeat_every: DurationText | None = None
    """Remind again at this interval (repeated 催办) until the clock stops or the next level."""


class SlaPolicy(_Frozen):
    warning_ratio: float = Field(gt=0, lt=1)
    """Warn once this share of a clock's time has passed."""
    warning_ratios: tuple[float, ...] = ()
    """Several warnings (e.g. 0.5 and 0.8); when given, they replace ``warning_ratio``."""
    classes: Mapping[Key, SlaClass] = Field(min_length=1)
    escalation: tuple[EscalationLevel, ...] = ()

    def sla_class(self, name: str) -> SlaClass:
        try:
            return self.classes[name]
        except KeyError:
            raise KeyError(f"no SLA class {name!r}; known: {', '.join(self.classes)}") from None

    @model_validator(mode="after")
    def _check(self) -> SlaPolicy:
        if dup := _duplicates(tuple(level.id for level in self.escalation)):
            raise ValueError(f"escalation level ids listed twice: {', '.join(dup)}")
        for earlier, later in zip(self.escalation, self.escalation[1:], strict=False):
            same_unit = earlier.after.unit == later.after.unit
            if same_unit and later.after.amount < earlier.after.amount:
                raise ValueError(
                    f"escalation level {later.id!r} comes after {earlier.id!r} "
                    f"but its 'after' ({later.after}) is shorter ({earlier.after})"
                )
        return self


class DeclaredYear(_Frozen):
    """One year's official schedule, for a year the holiday package does not cover yet.

    The State Council publishes next year's holidays and make-up working days (调休) around
    November; the packages follow weeks later. Declaring the year here covers it completely:
    weekdays work, except ``holidays``; ``working_days`` are the make-up weekend days.
    """

    holidays: tuple[date, ...]
    working_days: tuple[date, ...] = ()


class CalendarConfig(_Frozen):
    timezone: Text
    holiday_source: Literal["chinese-calendar", "holidays"]
    extra_holidays: tuple[date, ...] = ()
    extra_working_days: tuple[date, ...] = ()
    declared_years: dict[int, DeclaredYear] = Field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @model_validator(mode="after")
    def _check(self) -> CalendarConfig:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        both = sorted(set(self.extra_holidays) & set(self.extra_working_days))
        if both:
            listed = ", ".join(d.isoformat() for d in both)
            raise ValueError(f"dates both extra holidays and extra working days: {listed}")
        for year, declared in self.declared_years.items():
            days = (*declared.holidays, *declared.working_days)
            strays = sorted(d.isoformat() for d in days if d.year != year)
            if strays:
                raise ValueError(f"declared year {year} lists dates of another year: {strays}")
            both = sorted(set(declared.holidays) & set(declared.working_days))
            if both:
                listed = ", ".join(d.isoformat() for d in both)
                raise ValueError(
                    f"declared year {year}: dates both holidays and working days: {listed}"
                )
            weekday_work = sorted(d.isoformat() for d in declared.working_days if d.weekday() < 5)
            if weekday_work:
                raise ValueError(
                    f"declared year {year}: working_days are make-up weekend days; "
                    f"these are weekdays already: {weekday_work}"
                )
        return self


class RoutingPolicy(_Frozen):
    policy_version: StrictInt = Field(ge=1)
    max_returns_before_final_ruling: StrictInt = Field(ge=1)
    nearest_grid_tolerance_m: float = Field(ge=0)
