"""AsyncAPI documents generated from the code: FastStream's, completed with the contract.

FastStream documents the subscribers and publishers it knows (intake's request/reply).
Event consumers run their own pull loop (see ``civicgrid.events.consumer``) and services write
events through the event store, not FastStream publishers; both are added from the code's own
declarations: each service's ``ConsumerSpec``s, ``ownership.WRITERS`` and the event union's
JSON schema.
"""

from __future__ import annotations

from typing import Any

from faststream.specification import AsyncAPI
from pydantic import TypeAdapter

from civicgrid.events import subjects
from civicgrid.events.models import EVENT_CLASSES, AnyEvent
from civicgrid.events.ownership import WRITERS
from civicgrid.servicekit.service import Service

VERSION = "0.1.0"
SCHEMA_REF_TEMPLATE = "#/components/schemas/{model}"


def _event_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    schema = TypeAdapter(AnyEvent).json_schema(ref_template=SCHEMA_REF_TEMPLATE)
    definitions = schema.pop("$defs", {})
    return schema, definitions


def asyncapi_document(service: Service) -> dict[str, Any]:
    document: dict[str, Any] = (
        AsyncAPI(
            service.broker,
            title=service.title,
            version=VERSION,
            schema_version="3.0.0",
            description=(service.http.description or service.title),
        )
        .to_specification()
        .to_jsonable()
    )
    union, definitions = _event_schemas()
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.update(definitions)
    schemas["IncidentEvent"] = union
    messages = components.setdefault("messages", {})

    channels = document.setdefault("channels", {})
    operations = document.setdefault("operations", {})
    for consumer in service.consumers:
        spec = consumer.spec
        message_key = f"{spec.durable}:Event"
        messages[message_key] = {
            "title": "IncidentEvent",
            "contentType": "application/json",
            "payload": {"$ref": "#/components/schemas/IncidentEvent"},
            "headers": _cloudevents_headers(),
        }
        for index, filter_subject in enumerate(spec.filter_subjects):
            channel = f"{spec.durable}.{index}"
            channels[channel] = {
                "address": filter_subject,
                "description": (
                    f"durable pull consumer '{spec.durable}' on stream {spec.stream};"
                    f" explicit ack, max_deliver {spec.max_deliver}, then dlq.{spec.service}"
                ),
                "messages": {"Event": {"$ref": f"#/components/messages/{message_key}"}},
            }
            operations[f"consume_{channel}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{channel}"},
            }

    for event_type in WRITERS.get(service.settings.service, ()):
        model = EVENT_CLASSES[event_type].__name__
        channel = f"incident.{event_type}"
        message_key = f"{channel}:Event"
        messages[message_key] = {
            "title": model,
            "contentType": "application/json",
            "payload": {"$ref": SCHEMA_REF_TEMPLATE.format(model=model)},
            "headers": _cloudevents_headers(),
        }
        channels[channel] = {
            "address": subjects.events_of_type(event_type).replace(".*.", ".{incident_id}."),
            "description": f"{model} events, appended to the INCIDENTS stream",
            "parameters": {"incident_id": {"description": "the incident's ULID"}},
            "messages": {"Event": {"$ref": f"#/components/messages/{message_key}"}},
        }
        operations[f"append_{event_type}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
        }
    return document


def _cloudevents_headers() -> dict[str, Any]:
    names = ("ce-id", "ce-type", "ce-source", "ce-time", "ce-subject", "ce-specversion")
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": list(names),
    }
