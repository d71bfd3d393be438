"""NATS seed URLs, as NATS tools take them: one URL or a comma-separated list.

``nats://u:p@10.0.0.1:4222,nats://10.0.0.2:4222`` is three spellings away from what nats-py
wants (a list of servers, and the credentials apart): a client given every seed connects
through whichever one answers, so a cluster node that is down does not keep a service that
(re)starts from becoming ready. Credentials on any seed apply to all of them, and to the
servers the cluster announces (which carry none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class SeedsError(ValueError):
    pass


@dataclass(frozen=True)
class NatsSeeds:
    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> NatsSeeds:
        seeds = [part.strip() for part in text.split(",") if part.strip()]
        if not seeds:
            raise SeedsError(f"no NATS URL in {text!r}: give one or several, comma-separated")
        servers: list[str] = []
        credentials: set[tuple[str, str | None]] = set()
        for seed in seeds:
            url = seed if "://" in seed else f"nats://{seed}"
            try:
                parts = urlsplit(url)
                port = parts.port
            except ValueError as exc:
                raise SeedsError(f"not a NATS URL: {_shown(url)!r} ({exc})") from exc
            if parts.scheme not in ("nats", "tls", "ws", "wss") or not parts.hostname:
                raise SeedsError(
                    f"not a NATS URL: {_shown(url)!r} (want nats://host:port, comma-separated)"
                )
            if parts.username is not None:
                credentials.add((parts.username, parts.password))
            host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
            servers.append(f"{parts.scheme}://{host}{f':{port}' if port else ''}")
        if len(credentials) > 1:
            raise SeedsError(
                "the NATS seeds carry different credentials: give them on one seed (or the same"
                " on each); they apply to every server of the cluster"
            )
        user, password = next(iter(credentials), (None, None))
        return cls(servers=tuple(servers), user=user, password=password)

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for ``nats.connect``: every seed, and the credentials apart."""
        options: dict[str, Any] = {"servers": list(self.servers)}
        if self.user is not None and self.password is None:
            options["token"] = self.user
        elif self.user is not None:
            options["user"] = self.user
            options["password"] = self.password
        return options

    def shown(self) -> str:
        """The seeds without credentials: for logs and banners."""
        return ",".join(self.servers)


def _shown(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if "@" in rest else url
