"""Idempotency keys, and the incident ids and message ids derived from them.

A report's key is one of (first present wins):

- ``key:<system>:<Idempotency-Key>`` - the header (or ``idempotency_key`` field), per system;
- ``token:<token>`` - an Open311 client's ``token`` (extension: the client names its request);
- ``ref:<channel>:<external_ref>`` - the channel's own reference (12345 ticket, 110 transfer...).

A keyed report's new incident id is derived from the key, so a retry lands on the same
subject and the store's expected-version check (0, "no events yet") plus the message id
recognise it - across replicas and without any index.
"""

from __future__ import annotations

import base64
import hashlib

from civicgrid.events.ids import new_incident_id

# Crockford's base32, as ULIDs use: derived ids look like the generated ones in subjects.
_STANDARD = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TO_CROCKFORD = str.maketrans(_STANDARD, _CROCKFORD)


def header_key(system: str, key: str) -> str:
    return f"key:{system}:{key}"


def token_key(token: str) -> str:
    return f"token:{token}"


def reference_key(channel: str, external_ref: str) -> str:
    return f"ref:{channel}:{external_ref}"


def digest(key: str) -> str:
    raw = hashlib.sha256(key.encode("utf-8")).digest()
    return base64.b32encode(raw).decode("ascii").translate(_TO_CROCKFORD)[:26]


def incident_id_for(key: str | None) -> str:
    return new_incident_id() if key is None else digest(key)


def report_message_prefix(key: str | None, event_id: str, incident_id: str) -> str:
    """``Nats-Msg-Id`` prefix of a report's append to ``incident_id``: the same for every
    retry of a keyed report (message ids are unique stream-wide, hence the incident)."""
    return f"report:{digest(key) if key is not None else event_id}:{incident_id}"


def command_causation(system: str, command_id: str) -> str:
    """A command's causation id; scoped by system so two systems' ids never collide."""
    return f"cmd:{system}:{command_id}"
