"""Who may publish and subscribe to what on NATS (design section 8), as data.

The embedded server renders these into its users; a cluster's operators render the same grants
into their accounts (deploy/k8s/base/nats/authorization.conf, checked against this module).
JetStream's API is subject-based, so "may read stream S" means a handful of ``$JS.API``
subjects scoped to S, and "may manage consumer C" a handful scoped to S and C.

Consumers: a service may create, update, delete, read and pull only the durables it declares in
``civicgrid.events.durables``. Everyone else reads with ephemeral or ordered consumers. Their
names are random (chosen by the server or the client), so creating, pulling from and acking
them needs a wildcard on the consumer token; every declared durable is therefore also denied by
name to every user that does not own it (in NATS a deny wins over an allow). What the subject
cannot tell apart: a create by name may ask for a durable. A reader can thus create a durable
of an undeclared name, never touch a declared one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from civicgrid.events import durables, ownership, streams, subjects
from civicgrid.events.durables import Durable


@dataclass(frozen=True)
class Grant:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Lets a responder answer requests without a blanket right to publish on _INBOX.>.
    allow_responses: bool = False
    # Subjects refused even where an allow matches them (other services' durables).
    deny_publish: tuple[str, ...] = ()

    def as_nats_permissions(self) -> dict[str, object]:
        """The ``permissions`` block of a NATS user, as plain JSON (nats-server accepts it)."""
        publish: dict[str, list[str]] = {"allow": list(self.publish)}
        if self.deny_publish:
            publish["deny"] = list(self.deny_publish)
        permissions: dict[str, object] = {
            "publish": publish,
            "subscribe": {"allow": list(self.subscribe)},
        }
        if self.allow_responses:
            permissions["allow_responses"] = True
        return permissions


def read_stream(stream: str) -> tuple[str, ...]:
    """Read a stream: its info, single messages, and ephemeral or ordered consumers on it."""
    return (
        "$JS.API.INFO",
        # Clients look a stream up by subject when a subscription names none.
        "$JS.API.STREAM.NAMES",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        # Ephemeral consumers: the legacy create (no consumer token; the server names the
        # consumer and refuses a durable name in the request) ...
        f"$JS.API.CONSUMER.CREATE.{stream}",
        # ... and the create by a client-chosen name (nats-py's pull ephemeral, newer clients'
        # ordered consumers), optionally followed by the filter subject. These also create or
        # update a durable of that name: every declared durable is denied to non-owners.
        f"$JS.API.CONSUMER.CREATE.{stream}.*",
        f"$JS.API.CONSUMER.CREATE.{stream}.*.>",
        # Reading the state of (a projector's lag), pulling from, acking and deleting one's
        # ephemeral. Their names are random: nobody can list them (CONSUMER.LIST and .NAMES
        # are not granted) to guess another's.
        f"$JS.API.CONSUMER.INFO.{stream}.*",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.*",
        f"$JS.ACK.{stream}.*.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.*",
        # Flow-control replies of an ordered (push) consumer.
        f"$JS.FC.{stream}.>",
    )


def manage_durable(durable: Durable) -> tuple[str, ...]:
    """Create (or update), read, delete, pull from and ack one named durable."""
    stream, name = durable.stream, durable.name
    return (
        f"$JS.API.CONSUMER.CREATE.{stream}.{name}",
        # Create by name with one filter subject appended (nats-py, Go) as further tokens.
        f"$JS.API.CONSUMER.CREATE.{stream}.{name}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.{name}",
        f"$JS.API.CONSUMER.INFO.{stream}.{name}",
        f"$JS.API.CONSUMER.DELETE.{stream}.{name}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
    )


def touch_durable(durable: Durable) -> tuple[str, ...]:
    """Every API subject that names one durable: what a user that does not own it is denied."""
    stream, name = durable.stream, durable.name
    return (
        # CREATE, INFO, DELETE, PAUSE, RESET, UNPIN ...
        f"$JS.API.CONSUMER.*.{stream}.{name}",
        f"$JS.API.CONSUMER.*.{stream}.{name}.>",
        # DURABLE.CREATE, MSG.NEXT, LEADER.STEPDOWN
        f"$JS.API.CONSUMER.*.*.{stream}.{name}",
        f"$JS.ACK.{stream}.{name}.>",
    )


def others_durables(user: str, read: tuple[str, ...]) -> tuple[str, ...]:
    """Denials for every declared durable on the streams ``user`` reads that it does not own."""
    owned = durables.OWNED.get(user, ())
    return tuple(
        subject
        for durable in durables.all_durables()
        if durable.stream in read and durable not in owned
        for subject in touch_durable(durable)
    )


def own_durables(service: str) -> tuple[str, ...]:
    return tuple(
        subject for durable in durables.OWNED[service] for subject in manage_durable(durable)
    )


def _writes(service: str) -> tuple[str, ...]:
    return tuple(
        f"{subjects.INCIDENT_PREFIX}.*.{event_type}" for event_type in ownership.WRITERS[service]
    )


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _service_grant(
    service: str,
    *,
    reads: tuple[str, ...],
    publish: tuple[str, ...] = (),
    subscribe: tuple[str, ...] = (),
    allow_responses: bool = False,
) -> Grant:
    return Grant(
        publish=_unique(
            (
                *(subject for stream in reads for subject in read_stream(stream)),
                *own_durables(service),
                *publish,
                *_writes(service),
                subjects.dlq(service),
            )
        ),
        subscribe=(INBOX, *subscribe),
        allow_responses=allow_responses,
        deny_publish=others_durables(service, reads),
    )


INBOX = "_INBOX.>"

SERVICE_GRANTS: dict[str, Grant] = {
    "intake": _service_grant(
        "intake",
        # Its work consumer's replays come from the DLQ; its duplicate claims live in a bucket.
        reads=(streams.INCIDENTS, streams.DLQ, f"KV_{streams.INTAKE_DUPLICATES_BUCKET}"),
        publish=(f"$KV.{streams.INTAKE_DUPLICATES_BUCKET}.>",),
        subscribe=(f"{subjects.INTAKE_REPORT_PREFIX}.>", f"{subjects.INTAKE_COMMAND_PREFIX}.>"),
        allow_responses=True,
    ),
    "routing": _service_grant(
        "routing",
        reads=(streams.INCIDENTS, streams.DLQ, f"KV_{streams.ROUTING_POLICY_BUCKET}"),
        publish=(f"$KV.{streams.ROUTING_POLICY_BUCKET}.>",),
        subscribe=(f"$KV.{streams.ROUTING_POLICY_BUCKET}.>",),
    ),
    "sla": _service_grant(
        "sla",
        reads=(
            streams.INCIDENTS,
            streams.SLA_TIMERS,
            streams.DLQ,
            f"KV_{streams.SLA_POLICY_BUCKET}",
        ),
        publish=(
            # Arming: schedules (ADR-51) are published on sla.timer.>; the server itself writes
            # the firings on sla.fired.>, which nobody may publish. Cancelling purges a subject.
            f"{subjects.SLA_TIMER_PREFIX}.>",
            f"$JS.API.STREAM.PURGE.{streams.SLA_TIMERS}",
            f"{subjects.NOTIFY_PREFIX}.>",
            # SLA policy versions, seeded at start like routing's.
            f"$KV.{streams.SLA_POLICY_BUCKET}.>",
        ),
        subscribe=(f"$KV.{streams.SLA_POLICY_BUCKET}.>",),
    ),
    "reporting": _service_grant("reporting", reads=(streams.INCIDENTS,)),
}

# Other systems: report and command through intake, read the incident events with ephemeral or
# ordered consumers, nothing else.
EXTERNAL_GRANT = Grant(
    publish=(
        f"{subjects.INTAKE_REPORT_PREFIX}.>",
        f"{subjects.INTAKE_COMMAND_PREFIX}.>",
        *read_stream(streams.INCIDENTS),
    ),
    subscribe=(INBOX, f"{subjects.NOTIFY_PREFIX}.>"),
    deny_publish=others_durables("external", (streams.INCIDENTS,)),
)


def authorization_config(passwords: Mapping[str, str]) -> str:
    """nats-server's ``authorization`` block for these users: ``admin`` unrestricted, every
    other user with its grant (a service's, or ``external``'s). The embedded server and the
    tests that run a secured server both render their users here."""
    grants: dict[str, Grant] = {**SERVICE_GRANTS, "external": EXTERNAL_GRANT}
    users = []
    for user, password in passwords.items():
        entry: dict[str, object] = {"user": user, "password": password}
        if user != "admin":
            entry["permissions"] = grants[user].as_nats_permissions()
        # nats-server's config format accepts JSON objects, which spares us quoting rules.
        users.append(json.dumps(entry))
    return "authorization {\n  users: [\n    " + ",\n    ".join(users) + "\n  ]\n}\n"
