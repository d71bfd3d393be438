"""API keys: which external system is calling, what it may do, and how often.

Keys come from two places:

- ``CIVICGRID_DEV_API_KEY``: the development key ``civicgrid up`` provisions; every right,
  no rate limit; system name ``dev``.
- ``CIVICGRID_API_KEYS_FILE``: an optional YAML file, checked at start (a bad file stops the
  service with the file, the entry and what is wrong)::

      keys:
        - system: hotline-12345          # [a-z0-9_-], 1-32; the actor id in events
          key_sha256: 5e88489...         # hex SHA-256 of the key (preferred), or
          # key: "plain-text-key"        # the key itself (development only)
          channels: [hotline_12345]      # report channels; "*" for all
          commands: [callback, reopen]   # commands; "*" for all
          units: ["*"]                   # units it may act for in commands (unit ids); "*" all
          read_incidents: false          # GET /api/v1/incidents/{id} (holds personal data)
          rate_limit: {per_minute: 600, burst: 60}   # omit for no limit

Reading Open311 needs no key, as the GeoReport spec says.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from civicgrid.events.base import UnitRef
from civicgrid.events.incident_events import Channel
from civicgrid.intake.domain.commands import Command, CommandName
from civicgrid.intake.errors import forbidden, rate_limited, unauthorized

ALL = "*"
DEV_SYSTEM = "dev"
SystemName = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]
UnitId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]


class KeysFileError(ValueError):
    pass


class RateLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    per_minute: float = Field(gt=0, le=1_000_000)
    burst: int | None = Field(default=None, ge=1, le=100_000)

    @property
    def capacity(self) -> float:
        return float(self.burst) if self.burst is not None else max(1.0, self.per_minute)


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    system: SystemName
    key_sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    key: Annotated[str, Field(min_length=16, max_length=256)] | None = None
    channels: list[Channel | Literal["*"]] = []
    commands: list[CommandName | Literal["*"]] = []
    # A department's own system acts for that department only; the default keeps older files
    # meaning what they meant.
    units: list[UnitId | Literal["*"]] = [ALL]
    read_incidents: bool = False
    rate_limit: RateLimit | None = None

    @model_validator(mode="after")
    def _one_key(self) -> KeyEntry:
        if (self.key_sha256 is None) == (self.key is None):
            raise ValueError("give exactly one of key_sha256 and key")
        return self

    def hashed(self) -> str:
        if self.key_sha256 is not None:
            return self.key_sha256.lower()
        assert self.key is not None
        return hash_key(self.key)


class KeysFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keys: list[KeyEntry]


@dataclass(frozen=True)
class Rights:
    system: str
    channels: frozenset[str]
    commands: frozenset[str]
    read_incidents: bool
    rate_limit: RateLimit | None
    units: frozenset[str] = frozenset({ALL})

    def may_act_for(self, unit: UnitRef) -> bool:
        return ALL in self.units or unit.id in self.units

    def may_report(self, channel: str) -> bool:
        return ALL in self.channels or channel in self.channels

    def may_command(self, command: str) -> bool:
        return ALL in self.commands or command in self.commands


def acting_units(command: Command) -> tuple[UnitRef, ...]:
    candidates = (getattr(command, "unit", None), getattr(command, "approved_by", None))
    return tuple(unit for unit in candidates if isinstance(unit, UnitRef))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def dev_rights() -> Rights:
    return Rights(DEV_SYSTEM, frozenset({ALL}), frozenset({ALL}), True, None)


def rights_of(entry: KeyEntry) -> Rights:
    return Rights(
        entry.system,
        frozenset(str(c) for c in entry.channels),
        frozenset(str(c) for c in entry.commands),
        entry.read_incidents,
        entry.rate_limit,
        frozenset(entry.units),
    )


def load_keys_file(path: Path) -> dict[str, Rights]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise KeysFileError(f"{path}: cannot read the API keys file: {exc}") from exc
    try:
        parsed = KeysFile.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise KeysFileError(f"{path}: {problems}") from exc
    grants: dict[str, Rights] = {}
    for index, entry in enumerate(parsed.keys):
        hashed = entry.hashed()
        if hashed in grants:
            raise KeysFileError(f"{path}: keys.{index}: the same key is listed twice")
        grants[hashed] = rights_of(entry)
    return grants


@dataclass
class KeyRing:
    """Identifies callers by key; stores only hashes, so a dump of it reveals no key."""

    grants: Mapping[str, Rights]

    @classmethod
    def from_sources(cls, dev_key: str | None, keys_file: Path | None) -> KeyRing:
        grants: dict[str, Rights] = {}
        if keys_file is not None:
            grants.update(load_keys_file(keys_file))
        if dev_key:
            grants[hash_key(dev_key)] = dev_rights()
        return cls(grants)

    def identify(self, key: str | None) -> Rights:
        if not key:
            raise unauthorized("an API key is required (X-API-Key header or api_key)")
        rights = self.grants.get(hash_key(key))
        if rights is None:
            raise unauthorized("unknown API key")
        return rights


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    """A token bucket per system, in this replica (N replicas allow N times the rate)."""

    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, rights: Rights) -> None:
        limit = rights.rate_limit
        if limit is None:
            return
        now = self.clock()
        rate = limit.per_minute / 60.0
        with self._lock:
            bucket = self._buckets.setdefault(rights.system, _Bucket(limit.capacity, now))
            bucket.tokens = min(limit.capacity, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens < 1.0:
                raise rate_limited((1.0 - bucket.tokens) / rate)
            bucket.tokens -= 1.0


@dataclass
class Gate:
    """Who may do what: identify the key, check the right, take a token."""

    keys: KeyRing
    limiter: RateLimiter

    def for_report(self, key: str | None, channel: str) -> Rights:
        rights = self.keys.identify(key)
        if not rights.may_report(channel):
            raise forbidden(f"this key may not report on the {channel} channel")
        self.limiter.take(rights)
        return rights

    def for_command(self, key: str | None, command: str) -> Rights:
        rights = self.keys.identify(key)
        if not rights.may_command(command):
            raise forbidden(f"this key may not issue {command}")
        self.limiter.take(rights)
        return rights

    def check_units(self, rights: Rights, command: Command) -> None:
        """The units a command acts for must be among the key's: a key cannot sign, resolve
        or return for a unit that is not its system's."""
        for unit in acting_units(command):
            if not rights.may_act_for(unit):
                raise forbidden(f"this key may not act for unit {unit.kind}:{unit.id}")

    def for_reading(self, key: str | None) -> Rights:
        rights = self.keys.identify(key)
        if not rights.read_incidents:
            raise forbidden("this key may not read incidents")
        self.limiter.take(rights)
        return rights
