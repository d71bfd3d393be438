"""A policy file is checked against the city before it is published."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from civicgrid.routing.policy import problems_with, read_policy_file
from tests.support.routing import FakeCity

HEAD = "policy_version: 2\nmax_returns_before_final_ruling: 2\nnearest_grid_tolerance_m: 300\n"


def test_a_policy_file_naming_what_the_city_lacks_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(
        HEAD
        + "matter_overrides:\n"
        + "  no-such.matter: {handling_level: grid}\n"
        + "  city-appearance.illegal-parking:\n"
        + "    lead_unit: dept-ghost\n"
        + "    fallback_units: [dept-police, dept-phantom]\n"
        + "    sla_class: leisurely\n",
        encoding="utf-8",
    )
    assert problems_with(read_policy_file(path), FakeCity()) == [
        "matter_overrides: no matter 'no-such.matter'",
        "matter_overrides.city-appearance.illegal-parking: no unit 'dept-ghost'",
        "matter_overrides.city-appearance.illegal-parking: no unit 'dept-phantom'",
        "matter_overrides.city-appearance.illegal-parking: no SLA class 'leisurely'",
    ]


def test_a_policy_file_with_a_typo_in_a_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(HEAD + "max_return_before_final_ruling: 1\n", encoding="utf-8")
    with pytest.raises(ValidationError, match="max_return_before_final_ruling"):
        read_policy_file(path)
