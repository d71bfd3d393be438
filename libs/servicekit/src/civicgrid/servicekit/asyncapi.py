"""AsyncAPI documents generated from the code: FastStream's, completed with the contract.

FastStream documents every subscriber and publisher it knows. Event consumers take the raw
message (so that the DLQ sees what could not be parsed), which FastStream cannot type; and
services write events through the event store, not FastStream publishers. Both gaps are filled
from the contract: the event union's JSON schema, and ``ownership.WRITERS``.
"""

from __future__ import annotations

from typing import Any

from civicgrid.events import subjects
from civicgrid.events.models import EVENT_CLASSES, AnyEvent
from civicgrid.events.ownership import WRITERS
from civicgrid.servicekit.service import Service
from faststream.specification import AsyncAPI
from pydantic import TypeAdapter

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

    for consumer in service.consumers:
        name = consumer.spec.durable
        for key, message in list(messages.items()):
            if key.startswith(f"{name}:"):
                message["payload"] = {"$ref": "#/components/schemas/IncidentEvent"}
    if not _uses_empty(document):
        schemas.pop("EmptyPayload", None)

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
        document.setdefault("channels", {})[channel] = {
            "address": subjects.events_of_type(event_type).replace(".*.", ".{incident_id}."),
            "description": f"{model} events, appended to the INCIDENTS stream",
            "parameters": {"incident_id": {"description": "the incident's ULID"}},
            "messages": {"Event": {"$ref": f"#/components/messages/{message_key}"}},
        }
        document.setdefault("operations", {})[f"append_{event_type}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel}"},
        }
    return document


def _uses_empty(document: dict[str, Any]) -> bool:
    return '"#/components/schemas/EmptyPayload"' in str(document).replace("'", '"')


def _cloudevents_headers() -> dict[str, Any]:
    names = ("ce-id", "ce-type", "ce-source", "ce-time", "ce-subject", "ce-specversion")
    return {
        "type": "object",
        "properties": {name: {"type": "string"} for name in names},
        "required": list(names),
    }
