"""NATS users and the development API key of the embedded platform, kept in the data dir.

Generated on the first ``up`` and reused after, so a second ``up`` resumes with the same
identities; the file is readable by its owner only.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from civicgrid.events.ownership import SERVICES

FILE_NAME = "credentials.json"
USERS = ("admin", *SERVICES, "external")


@dataclass(frozen=True)
class Credentials:
    passwords: dict[str, str]
    dev_api_key: str

    def url_for(self, user: str, host: str, port: int) -> str:
        return f"nats://{user}:{self.passwords[user]}@{host}:{port}"


def load_or_create(data_dir: Path, dev_api_key: str | None) -> Credentials:
    path = data_dir / FILE_NAME
    if path.exists():
        stored = Credentials(**json.loads(path.read_text()))
        missing = [user for user in USERS if user not in stored.passwords]
        passwords = {**stored.passwords, **{u: secrets.token_urlsafe(24) for u in missing}}
        credentials = Credentials(passwords, dev_api_key or stored.dev_api_key)
    else:
        credentials = Credentials(
            {user: secrets.token_urlsafe(24) for user in USERS},
            dev_api_key or f"dev-{secrets.token_urlsafe(24)}",
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(asdict(credentials), indent=2))
    os.chmod(temporary, 0o600)
    temporary.replace(path)
    return credentials


def load_existing(data_dir: Path) -> Credentials:
    path = data_dir / FILE_NAME
    if not path.exists():
        raise SystemExit(f"{path} not found: start the platform with `civicgrid up` first")
    return Credentials(**json.loads(path.read_text()))
