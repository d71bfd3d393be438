"""Renders the embedded nats-server's users from the permission grants in the contract."""

from __future__ import annotations

import json

from civicgrid.cli.credentials import Credentials
from civicgrid.events.permissions import EXTERNAL_GRANT, SERVICE_GRANTS, Grant


def _user(name: str, password: str, grant: Grant | None) -> str:
    entry: dict[str, object] = {"user": name, "password": password}
    if grant is not None:
        entry["permissions"] = grant.as_nats_permissions()
    # nats-server's config format accepts JSON objects, which spares us quoting rules.
    return json.dumps(entry)


def authorization_block(credentials: Credentials) -> str:
    users = [_user("admin", credentials.passwords["admin"], None)]
    users += [
        _user(service, credentials.passwords[service], grant)
        for service, grant in SERVICE_GRANTS.items()
    ]
    users.append(_user("external", credentials.passwords["external"], EXTERNAL_GRANT))
    return "authorization {\n  users: [\n    " + ",\n    ".join(users) + "\n  ]\n}\n"
