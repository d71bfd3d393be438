"""Who may publish and subscribe to what on NATS (design section 8), as data.

The embedded server renders these into its users; a cluster's operators can render the same
grants into their accounts. JetStream's API is subject-based, so "may read stream S" means
a handful of ``$JS.API`` subjects scoped to S.
"""

from __future__ import annotations

from dataclasses import dataclass

from civicgrid.events import ownership, streams, subjects


@dataclass(frozen=True)
class Grant:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    # Lets a responder answer requests without a blanket right to publish on _INBOX.>.
    allow_responses: bool = False


def read_stream(stream: str) -> tuple[str, ...]:
    return (
        "$JS.API.INFO",
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.CONSUMER.*.{stream}",
        f"$JS.API.CONSUMER.*.{stream}.>",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.>",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.ACK.{stream}.>",
    )


def _writes(service: str) -> tuple[str, ...]:
    return tuple(
        f"{subjects.INCIDENT_PREFIX}.*.{event_type}" for event_type in ownership.WRITERS[service]
    )


INBOX = "_INBOX.>"

SERVICE_GRANTS: dict[str, Grant] = {
    "intake": Grant(
        publish=(*read_stream(streams.INCIDENTS), *_writes("intake"), subjects.dlq("intake")),
        subscribe=(
            INBOX,
            f"{subjects.INTAKE_REPORT_PREFIX}.>",
            f"{subjects.INTAKE_COMMAND_PREFIX}.>",
        ),
        allow_responses=True,
    ),
    "routing": Grant(
        publish=(
            *read_stream(streams.INCIDENTS),
            *read_stream("KV_ROUTING_POLICY"),
            # KeyValue.get on a bucket without allow_direct is a STREAM.MSG.GET request.
            "$JS.API.STREAM.MSG.GET.KV_ROUTING_POLICY",
            "$KV.ROUTING_POLICY.>",
            *_writes("routing"),
            subjects.dlq("routing"),
        ),
        subscribe=(INBOX, "$KV.ROUTING_POLICY.>"),
    ),
    "sla": Grant(
        publish=(
            *read_stream(streams.INCIDENTS),
            *read_stream(streams.SLA_TIMERS),
            # Cancelling a timer purges its schedule subject.
            f"$JS.API.STREAM.PURGE.{streams.SLA_TIMERS}",
            # Arming: schedules are published on sla.timer.>; the server itself writes the
            # firings on sla.fired.>, which sla only consumes.
            f"{subjects.SLA_TIMER_PREFIX}.>",
            f"{subjects.NOTIFY_PREFIX}.>",
            # SLA policy versions (seeded at start like routing's).
            *read_stream(f"KV_{streams.SLA_POLICY_BUCKET}"),
            f"$JS.API.STREAM.MSG.GET.KV_{streams.SLA_POLICY_BUCKET}",
            f"$KV.{streams.SLA_POLICY_BUCKET}.>",
            *_writes("sla"),
            subjects.dlq("sla"),
        ),
        subscribe=(INBOX, f"$KV.{streams.SLA_POLICY_BUCKET}.>"),
    ),
    "reporting": Grant(
        publish=(*read_stream(streams.INCIDENTS), subjects.dlq("reporting")),
        subscribe=(INBOX,),
    ),
}

# Other systems: report and command through intake, read the incident events, nothing else.
EXTERNAL_GRANT = Grant(
    publish=(
        f"{subjects.INTAKE_REPORT_PREFIX}.>",
        f"{subjects.INTAKE_COMMAND_PREFIX}.>",
        *read_stream(streams.INCIDENTS),
    ),
    subscribe=(INBOX, f"{subjects.NOTIFY_PREFIX}.>"),
)
