"""Renders the embedded nats-server's users from the permission grants in the contract."""

from __future__ import annotations

from civicgrid.cli.credentials import Credentials
from civicgrid.events.permissions import SERVICE_GRANTS, authorization_config


def authorization_block(credentials: Credentials) -> str:
    users = ["admin", *SERVICE_GRANTS, "external"]
    return authorization_config({user: credentials.passwords[user] for user in users})
