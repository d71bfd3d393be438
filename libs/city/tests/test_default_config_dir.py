"""Which configuration directory is used when none is given."""

from __future__ import annotations

from pathlib import Path

import pytest

from civicgrid.city import CONFIG_ENV, CityConfigError, default_config_dir, paths


def test_the_environment_variable_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(CONFIG_ENV, str(tmp_path))
    assert default_config_dir() == tmp_path


def test_without_it_the_shipped_city_is_found_in_the_repository(
    monkeypatch: pytest.MonkeyPatch, shipped_dir: Path
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert default_config_dir() == shipped_dir
    assert (default_config_dir() / "city.geojson").is_file()


def test_an_empty_environment_variable_counts_as_unset(
    monkeypatch: pytest.MonkeyPatch, shipped_dir: Path
) -> None:
    monkeypatch.setenv(CONFIG_ENV, "  ")
    assert default_config_dir() == shipped_dir


def test_outside_a_repository_the_error_says_to_set_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.setattr(paths, "__file__", str(tmp_path / "site-packages" / "paths.py"))
    with pytest.raises(CityConfigError, match=f"set {CONFIG_ENV}"):
        default_config_dir()
