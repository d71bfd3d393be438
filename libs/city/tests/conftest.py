"""Shared fixtures: the shipped city, loaded once, and throwaway copies of it to break."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from civicgrid.city import City, GeoIndex, load_city

REPO_ROOT = Path(__file__).resolve().parents[3]
SHIPPED_DIR = REPO_ROOT / "config" / "longgang"


@pytest.fixture(scope="session")
def shipped_dir() -> Path:
    return SHIPPED_DIR


@pytest.fixture(scope="session")
def city() -> City:
    return load_city(SHIPPED_DIR)


@pytest.fixture(scope="session")
def index(city: City) -> GeoIndex:
    return GeoIndex(city)


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A private copy of the shipped configuration that a test may break."""
    target = tmp_path / "city"
    shutil.copytree(SHIPPED_DIR, target)
    return target
