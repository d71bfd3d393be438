"""Settings read from the environment: defaults, and a clear refusal of a bad value."""

from __future__ import annotations

import pytest

from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import (
    DEFAULT_HISTORY_CACHE_SIZE,
    ServiceSettings,
    SettingsError,
)


def test_the_history_cache_bound_has_a_default_and_can_be_set() -> None:
    assert ServiceSettings.from_env("sla", env={}).history_cache_size == DEFAULT_HISTORY_CACHE_SIZE
    settings = ServiceSettings.from_env("sla", env={"CIVICGRID_HISTORY_CACHE_SIZE": "3"})
    assert settings.history_cache_size == 3
    assert Service(settings, title="sla").decisions.size == 3


@pytest.mark.parametrize(("text", "says"), [("many", "a number of incidents"), ("0", "at least 1")])
def test_a_bad_history_cache_bound_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(SettingsError, match=says):
        ServiceSettings.from_env("sla", env={"CIVICGRID_HISTORY_CACHE_SIZE": text})
