"""The subject scheme (design section 3 and 7). Builders and parsers live together."""

from __future__ import annotations

import re

INCIDENT_PREFIX = "incident"
ALL_INCIDENT_EVENTS = "incident.>"
DLQ_PREFIX = "dlq"
SLA_TIMER_PREFIX = "sla.timer"
SLA_FIRED_PREFIX = "sla.fired"
NOTIFY_PREFIX = "notify"
INTAKE_REPORT_PREFIX = "intake.report"
INTAKE_COMMAND_PREFIX = "intake.command"
ROUTING_POLICY_SUBJECT = "routing.policy"

_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


class SubjectError(ValueError):
    pass


def _token(value: str, what: str) -> str:
    # A '.', '*' or '>' inside a token would silently change which messages a subject matches.
    if not _TOKEN.match(value):
        raise SubjectError(f"{what} {value!r} is not a valid subject token")
    return value


def incident_event(incident_id: str, event_type: str) -> str:
    return f"{INCIDENT_PREFIX}.{_token(incident_id, 'incident id')}.{_token(event_type, 'type')}"


def incident_events(incident_id: str) -> str:
    """All events of one incident: the filter for its history and its concurrency check."""
    return f"{INCIDENT_PREFIX}.{_token(incident_id, 'incident id')}.*"


def events_of_type(event_type: str) -> str:
    return f"{INCIDENT_PREFIX}.*.{_token(event_type, 'event type')}"


def parse_incident_subject(subject: str) -> tuple[str, str]:
    parts = subject.split(".")
    if len(parts) != 3 or parts[0] != INCIDENT_PREFIX:
        raise SubjectError(f"{subject!r} is not an incident event subject")
    return parts[1], parts[2]


def dlq(service: str) -> str:
    return f"{DLQ_PREFIX}.{_token(service, 'service')}"


def dlq_redrive(service: str, durable: str) -> str:
    """Where a replay asks one consumer of a service to handle a dead letter's original again."""
    return f"{DLQ_PREFIX}.redrive.{_token(service, 'service')}.{_token(durable, 'durable')}"


def sla_timer(incident_id: str, clock: str, stage: str) -> str:
    return (
        f"{SLA_TIMER_PREFIX}.{_token(incident_id, 'incident id')}"
        f".{_token(clock, 'clock')}.{_token(stage, 'stage')}"
    )


def sla_fired(incident_id: str, clock: str, stage: str) -> str:
    return (
        f"{SLA_FIRED_PREFIX}.{_token(incident_id, 'incident id')}"
        f".{_token(clock, 'clock')}.{_token(stage, 'stage')}"
    )


def notify(unit_kind: str, unit_id: str) -> str:
    return f"{NOTIFY_PREFIX}.{_token(unit_kind, 'unit kind')}.{_token(unit_id, 'unit id')}"


def intake_report(channel: str) -> str:
    return f"{INTAKE_REPORT_PREFIX}.{_token(channel, 'channel')}"


def intake_command(command: str) -> str:
    return f"{INTAKE_COMMAND_PREFIX}.{_token(command, 'command')}"
