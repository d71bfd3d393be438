"""Service settings from the environment; every option of ``civicgrid up`` is also a variable."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from civicgrid.servicekit.seeds import NatsSeeds, SeedsError

DEFAULT_PORTS = {"intake": 8081, "routing": 8082, "sla": 8083, "reporting": 8084}
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_HISTORY_CACHE_SIZE = 2048


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class ServiceSettings:
    service: str
    nats_url: str
    http_host: str
    http_port: int
    config_dir: Path | None
    log_level: str
    instance: str
    stream_replicas: int
    # Incidents whose whole history a service keeps in memory for its decisions (LRU).
    history_cache_size: int = DEFAULT_HISTORY_CACHE_SIZE

    @property
    def nats_seeds(self) -> NatsSeeds:
        """``nats_url`` is one URL or a comma-separated list of seeds, as NATS tools take it."""
        return NatsSeeds.parse(self.nats_url)

    @classmethod
    def from_env(cls, service: str, env: dict[str, str] | None = None) -> ServiceSettings:
        values = dict(os.environ if env is None else env)
        prefix = f"CIVICGRID_{service.upper()}_"
        port_text = values.get(f"{prefix}PORT", str(DEFAULT_PORTS[service]))
        try:
            port = int(port_text)
        except ValueError as exc:
            raise SettingsError(f"{prefix}PORT must be a port number, got {port_text!r}") from exc
        if not 0 < port < 65536:
            raise SettingsError(f"{prefix}PORT must be between 1 and 65535, got {port}")
        config = values.get("CIVICGRID_CONFIG")
        nats_url = values.get(f"{prefix}NATS_URL") or values.get(
            "CIVICGRID_NATS_URL", DEFAULT_NATS_URL
        )
        try:
            NatsSeeds.parse(nats_url)
        except SeedsError as exc:
            raise SettingsError(f"CIVICGRID_NATS_URL: {exc}") from exc
        return cls(
            service=service,
            nats_url=nats_url,
            http_host=values.get("CIVICGRID_HTTP_HOST", "127.0.0.1"),
            http_port=port,
            config_dir=Path(config) if config else None,
            log_level=values.get("CIVICGRID_LOG_LEVEL", "INFO"),
            instance=values.get("CIVICGRID_INSTANCE", f"{service}-{os.getpid()}"),
            stream_replicas=int(values.get("CIVICGRID_STREAM_REPLICAS", "1")),
            history_cache_size=_history_cache_size(values),
        )


def _history_cache_size(values: dict[str, str]) -> int:
    text = values.get("CIVICGRID_HISTORY_CACHE_SIZE", str(DEFAULT_HISTORY_CACHE_SIZE))
    try:
        size = int(text)
    except ValueError as exc:
        raise SettingsError(
            f"CIVICGRID_HISTORY_CACHE_SIZE must be a number of incidents, got {text!r}"
        ) from exc
    if size < 1:
        raise SettingsError(f"CIVICGRID_HISTORY_CACHE_SIZE must be at least 1, got {size}")
    return size
