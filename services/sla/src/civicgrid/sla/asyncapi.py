"""sla's AsyncAPI additions: the timer schedules it arms, the firings it consumes (typed as
``TimerFiring``, not incident events) and the notifications it sends on ``notify.>``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from civicgrid.events.notifications import SlaNotification
from civicgrid.events.timers import TimerFiring

REF = "#/components/schemas/{model}"


def _schema(document: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template=REF)
    schemas = document["components"]["schemas"]
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


def complete(document: dict[str, Any], timers_durable: str) -> dict[str, Any]:
    firing = _schema(document, TimerFiring)
    notification = _schema(document, SlaNotification)
    messages = document["components"]["messages"]
    messages[f"{timers_durable}:Event"] = {
        "title": "TimerFiring",
        "contentType": "application/json",
        "payload": firing,
        "headers": {
            "type": "object",
            "properties": {"Nats-Scheduler": {"type": "string"}, "Nats-TTL": {"type": "string"}},
        },
    }
    messages["sla.timer:Schedule"] = {
        "title": "TimerFiring (schedule)",
        "contentType": "application/json",
        "payload": firing,
        "headers": {
            "type": "object",
            "properties": {
                "Nats-Schedule": {"type": "string", "description": "@at <RFC 3339, UTC>"},
                "Nats-Schedule-Target": {"type": "string"},
                "Nats-Schedule-TTL": {"type": "string"},
                "Nats-Rollup": {"type": "string", "const": "sub"},
            },
            "required": ["Nats-Schedule", "Nats-Schedule-Target"],
        },
    }
    messages["notify:SlaNotification"] = {
        "title": "SlaNotification",
        "contentType": "application/json",
        "payload": notification,
    }
    parameters = {
        "incident_id": {"description": "the incident's ULID"},
        "clock": {"description": "accept, arrive or resolve"},
        "stage": {"description": "warning, breach or escalation"},
    }
    document["channels"]["sla.timer"] = {
        "address": "sla.timer.{incident_id}.{clock}.{stage}",
        "description": (
            "One JetStream message schedule (ADR-51) per deadline in stream SLA_TIMERS;"
            " re-arming replaces it (rollup), cancelling purges the subject. The server"
            " publishes it to sla.fired.<incident_id>.<clock>.<stage> at its time."
        ),
        "parameters": parameters,
        "messages": {"Schedule": {"$ref": "#/components/messages/sla.timer:Schedule"}},
    }
    document["operations"]["arm_sla_timer"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/sla.timer"},
    }
    document["channels"]["notify"] = {
        "address": "notify.{unit_kind}.{unit_id}",
        "description": (
            "A unit reminded of a deadline: warning, breach, or an escalation level (core NATS,"
            " not stored; the incident's history holds the record)."
        ),
        "parameters": {
            "unit_kind": {"description": "grid, community, department, command_centre, ..."},
            "unit_id": {"description": "the unit's id"},
        },
        "messages": {"Notification": {"$ref": "#/components/messages/notify:SlaNotification"}},
    }
    document["operations"]["send_notification"] = {
        "action": "send",
        "channel": {"$ref": "#/channels/notify"},
    }
    return document
