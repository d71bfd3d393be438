"""API keys: the file's schema is checked at start; rights and rate limits per system."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from civicgrid.events.base import UnitKind, UnitRef
from civicgrid.intake.access import (
    Gate,
    KeyRing,
    KeysFileError,
    RateLimiter,
    hash_key,
    load_keys_file,
)
from civicgrid.intake.domain.commands import Accept, Extend
from civicgrid.intake.errors import Refused
from tests.support.intake import rights


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_keys_file_grants_channels_commands_reading_and_a_rate(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
keys:
  - system: hotline-12345
    key_sha256: {hash_key("hotline-secret-key-123")}
    channels: [hotline_12345]
    commands: [callback, reopen]
    rate_limit: {{per_minute: 600, burst: 60}}
  - system: grid-app
    key: grid-app-plain-key-0001
    channels: ["*"]
    read_incidents: true
""",
    )
    ring = KeyRing.from_sources("dev-key-0000000001", path)
    hotline = ring.identify("hotline-secret-key-123")
    assert hotline.may_report("hotline_12345") and not hotline.may_report("iot_sensor")
    assert hotline.may_command("callback") and not hotline.may_command("close")
    assert hotline.rate_limit is not None and hotline.rate_limit.capacity == 60
    assert ring.identify("grid-app-plain-key-0001").read_incidents
    assert ring.identify("dev-key-0000000001").may_command("merge")


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("keys:\n  - system: x\n    channels: [fax]\n    key: aaaaaaaaaaaaaaaa\n", "channels.0"),
        ("keys:\n  - system: x\n", "exactly one of key_sha256 and key"),
        ("keys:\n  - system: Bad Name\n    key: aaaaaaaaaaaaaaaa\n", "keys.0.system"),
        (
            "keys:\n  - {system: a, key: aaaaaaaaaaaaaaaa}\n"
            "  - {system: b, key: aaaaaaaaaaaaaaaa}\n",
            "twice",
        ),
        ("keys: [", "cannot read"),
    ],
)
def test_a_bad_keys_file_stops_the_service_saying_where(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(KeysFileError) as caught:
        load_keys_file(path)
    assert str(path) in str(caught.value) and complaint in str(caught.value)


def test_missing_unknown_and_unentitled_keys_are_told_apart() -> None:
    gate = Gate(KeyRing.from_sources("dev-key-0000000001", None), RateLimiter())
    with pytest.raises(Refused) as missing:
        gate.for_report(None, "citizen_app")
    with pytest.raises(Refused) as unknown:
        gate.for_report("guess", "citizen_app")
    assert (missing.value.status, unknown.value.status) == (401, 401)


def test_the_bucket_refills_with_time() -> None:
    now = [0.0]
    limited = rights("s", channels=("*",), per_minute=60, burst=2)
    ring = KeyRing({hash_key("k" * 16): limited})
    gate = Gate(ring, RateLimiter(clock=lambda: now[0]))
    gate.for_report("k" * 16, "citizen_app")
    gate.for_report("k" * 16, "citizen_app")
    with pytest.raises(Refused) as caught:
        gate.for_report("k" * 16, "citizen_app")
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "1"
    now[0] = 1.0
    gate.for_report("k" * 16, "citizen_app")


def test_a_key_bound_to_units_may_act_only_for_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
keys:
  - system: urban-mgmt
    key: urban-mgmt-plain-key-01
    commands: ["*"]
    units: [dept-urban-mgmt]
  - system: older-file
    key: older-file-plain-key-1
    commands: ["*"]
""",
    )
    gate = Gate(KeyRing.from_sources("dev-key-0000000001", path), RateLimiter())
    own = UnitRef(kind=UnitKind.DEPARTMENT, id="dept-urban-mgmt")
    other = UnitRef(kind=UnitKind.DEPARTMENT, id="dept-police")
    later = datetime(2030, 1, 1, tzinfo=UTC)

    bound = gate.for_command("urban-mgmt-plain-key-01", "accept")
    gate.check_units(bound, Accept(unit=own))
    with pytest.raises(Refused) as refused:
        gate.check_units(bound, Accept(unit=other))
    assert refused.value.status == 403
    assert "dept-police" in str(refused.value.problems[0].reason)
    with pytest.raises(Refused):
        gate.check_units(
            bound, Extend(approved_by=other, clock="resolve", new_due_at=later, reason="why")
        )
    # Without a units list (a file written before the field) and for the dev key: any unit.
    for key in ("older-file-plain-key-1", "dev-key-0000000001"):
        gate.check_units(gate.for_command(key, "accept"), Accept(unit=other))
