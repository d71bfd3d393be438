"""Where the city configuration lives when nobody says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

from civicgrid.city.errors import CityConfigError, Problem

CONFIG_ENV = "CIVICGRID_CONFIG"
SHIPPED_CITY = Path("config") / "longgang"


def default_config_dir() -> Path:
    """``$CIVICGRID_CONFIG`` if set, else the repository's shipped ``config/longgang``.

    The shipped city is found by walking up from this file, which works for the editable
    installs the repository uses; an installed wheel has no repository around it and needs the
    environment variable.
    """
    configured = os.environ.get(CONFIG_ENV, "").strip()
    if configured:
        return Path(configured).expanduser()
    for parent in Path(__file__).resolve().parents:
        candidate = parent / SHIPPED_CITY
        if (candidate / "city.geojson").is_file():
            return candidate
    raise CityConfigError(
        [
            Problem(
                SHIPPED_CITY,
                f"no city configuration found: set {CONFIG_ENV} to a configuration directory "
                f"(none given, and no {SHIPPED_CITY}/city.geojson above {Path(__file__).parent})",
            )
        ]
    )
