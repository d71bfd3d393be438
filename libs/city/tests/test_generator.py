"""The shipped city is what the deterministic generator writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
GENERATOR = REPO_ROOT / "tools" / "citygen" / "generate_city.py"
GENERATED = (
    "city.geojson",
    "units.yaml",
    "matters.yaml",
    "sla.yaml",
    "calendar.yaml",
    "routing.yaml",
)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two generator runs, side by side, with different hash seeds."""
    outputs = (tmp_path_factory.mktemp("first"), tmp_path_factory.mktemp("second"))
    runs = [
        subprocess.Popen(
            [sys.executable, str(GENERATOR), "--out", str(out)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for out, seed in zip(outputs, ("1", "4242"), strict=True)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=110)
        assert run.returncode == 0, stderr.decode()
    return outputs


def test_the_generator_writes_identical_bytes_on_every_run(two_runs: tuple[Path, Path]) -> None:
    first, second = two_runs
    for name in GENERATED:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name


def test_the_shipped_config_is_the_generators_current_output(
    two_runs: tuple[Path, Path], shipped_dir: Path
) -> None:
    first, _ = two_runs
    for name in GENERATED:
        assert (first / name).read_bytes() == (shipped_dir / name).read_bytes(), (
            f"{name} is stale: run tools/citygen/generate_city.py"
        )


def test_the_shipped_city_geojson_stays_small(shipped_dir: Path) -> None:
    assert (shipped_dir / "city.geojson").stat().st_size < 4_000_000
