"""Intake's own settings, from the environment (besides the shared ``ServiceSettings``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from civicgrid.servicekit.settings import SettingsError

DEFAULT_MAX_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class IntakeConfig:
    dev_api_key: str | None
    api_keys_file: Path | None
    max_body_bytes: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> IntakeConfig:
        values = os.environ if env is None else env
        keys_file = values.get("CIVICGRID_API_KEYS_FILE")
        size_text = values.get("CIVICGRID_INTAKE_MAX_BODY_BYTES", str(DEFAULT_MAX_BODY_BYTES))
        try:
            max_body_bytes = int(size_text)
        except ValueError as exc:
            raise SettingsError(
                f"CIVICGRID_INTAKE_MAX_BODY_BYTES must be a number of bytes, got {size_text!r}"
            ) from exc
        if not 1024 <= max_body_bytes <= 1024 * 1024:
            raise SettingsError("CIVICGRID_INTAKE_MAX_BODY_BYTES must be between 1 KiB and 1 MiB")
        return cls(
            dev_api_key=values.get("CIVICGRID_DEV_API_KEY") or None,
            api_keys_file=Path(keys_file) if keys_file else None,
            max_body_bytes=max_body_bytes,
        )
