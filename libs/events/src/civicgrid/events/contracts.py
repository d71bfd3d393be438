"""Consumer contracts: what each service reads, checked against what producers write.

Each service declares, beside its code (``civicgrid.<service>.reads.READS``), the event types
and fields it reads, as dotted paths into the event (``report.location.lon``). The checks here
hold a declaration against the producer's model (``incident_events``) and the producer's
committed AsyncAPI document, and hold the committed documents against the previous release's:
a field removed or retyped without a new ``schema_version`` and an upcaster is refused. Every
problem is one sentence naming the consumer, the producer, the event and the field.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, Union

from pydantic import BaseModel

from civicgrid.events.models import EVENT_CLASSES
from civicgrid.events.ownership import WRITERS, writer_of

Reads = Mapping[str, tuple[str, ...]]
"""event_type -> the dotted field paths a consumer reads from it."""

JsonSchema = dict[str, Any]


def model_problems(consumer: str, reads: Reads) -> list[str]:
    """Declarations that the producers' pydantic models do not satisfy."""
    problems = []
    for event_type, paths in reads.items():
        model = EVENT_CLASSES.get(event_type)
        if model is None:
            problems.append(
                f"{consumer} reads {event_type!r}, but no producer writes that event type"
                f" (known: {', '.join(sorted(EVENT_CLASSES))})"
            )
            continue
        producer = writer_of(event_type)
        for path in paths:
            missing = _missing_in_model(model, path.split("."))
            if missing is not None:
                problems.append(
                    f"{consumer} reads {event_type}.{path}, but {producer}'s model"
                    f" {model.__name__} has no field {missing!r} there"
                )
    return problems


def document_problems(
    consumer: str, reads: Reads, documents: Mapping[str, JsonSchema]
) -> list[str]:
    """Declarations that the producers' committed AsyncAPI documents do not satisfy."""
    problems = []
    for event_type, paths in reads.items():
        if event_type not in EVENT_CLASSES:
            continue  # model_problems says so
        producer = writer_of(event_type)
        document = documents.get(producer)
        if document is None:
            problems.append(
                f"{consumer} reads {event_type}, but {producer} has no AsyncAPI document"
            )
            continue
        schema = event_schema(document, event_type)
        if schema is None:
            problems.append(
                f"{consumer} reads {event_type}, but docs/asyncapi/{producer}.json has no channel"
                f" incident.{event_type} with a payload schema"
            )
            continue
        for path in paths:
            missing = _missing_in_schema(document, schema, path.split("."))
            if missing is not None:
                problems.append(
                    f"{consumer} reads {event_type}.{path}, but docs/asyncapi/{producer}.json"
                    f" ({schema.get('title', event_type)}) has no field {missing!r} there"
                )
    return problems


def compatibility_problems(
    released: JsonSchema,
    current: JsonSchema,
    producer: str,
    upcasters: Iterable[tuple[str, int]],
) -> list[str]:
    """What ``current`` breaks of ``released`` for the events ``producer`` writes.

    Adding an optional field is fine (readers ignore what they do not know). Removing a field,
    changing its type, narrowing an enum or making a required field optional breaks readers,
    unless the event got a new ``schema_version`` with an upcaster from every older one.
    """
    have = set(upcasters)
    problems = []
    for event_type in _written_in(released):
        old = event_schema(released, event_type)
        assert old is not None
        new = event_schema(current, event_type)
        if new is None:
            problems.append(
                f"{producer} no longer writes {event_type} (in the released AsyncAPI document),"
                " which consumers of the released contract read"
            )
            continue
        old_version, new_version = _version(old), _version(new)
        if new_version > old_version:
            missing = [v for v in range(old_version, new_version) if (event_type, v) not in have]
            if missing:
                problems.append(
                    f"{producer}'s {event_type} went from schema_version {old_version} to"
                    f" {new_version} without an upcaster from version(s) {missing}"
                    " (civicgrid.events.upcasting)"
                )
            continue
        breaks = _breaks(released, old, current, new, "")
        problems += [
            f"{producer}'s {event_type} (schema_version {new_version}, as released): {b};"
            " bump schema_version and add an upcaster, or keep the field as it was"
            for b in breaks
        ]
    return problems


def event_schema(document: JsonSchema, event_type: str) -> JsonSchema | None:
    """The payload schema of channel ``incident.<event_type>`` in an AsyncAPI document."""
    channel = document.get("channels", {}).get(f"incident.{event_type}")
    if channel is None:
        return None
    for message in channel.get("messages", {}).values():
        resolved = _resolve(document, message)
        payload = resolved.get("payload")
        if payload is not None:
            return _resolve(document, payload)
    return None


def _written_in(document: JsonSchema) -> list[str]:
    prefix = "incident."
    return sorted(
        name[len(prefix) :]
        for name in document.get("channels", {})
        if name.startswith(prefix) and name[len(prefix) :] in _ALL_TYPES
    )


_ALL_TYPES = {t for types_ in WRITERS.values() for t in types_} | set(EVENT_CLASSES)


def _version(schema: JsonSchema) -> int:
    return int(schema.get("properties", {}).get("schema_version", {}).get("default", 1))


def _resolve(document: JsonSchema, node: JsonSchema) -> JsonSchema:
    seen = 0
    while "$ref" in node and seen < 32:
        target: Any = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
        seen += 1
    return node


def _objects(document: JsonSchema, node: JsonSchema) -> list[JsonSchema]:
    """The object schemas a node may be (through $ref, anyOf/oneOf and array items)."""
    node = _resolve(document, node)
    found = []
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        found += _objects(document, option)
    if "items" in node:
        found += _objects(document, node["items"])
    if "properties" in node:
        found.append(node)
    return found


def _missing_in_schema(document: JsonSchema, schema: JsonSchema, path: list[str]) -> str | None:
    node = schema
    for depth, name in enumerate(path):
        candidates = [o for o in _objects(document, node) if name in o["properties"]]
        if not candidates:
            return ".".join(path[: depth + 1])
        node = candidates[0]["properties"][name]
    return None


def _missing_in_model(model: type[BaseModel], path: list[str]) -> str | None:
    current: Any = model
    for depth, name in enumerate(path):
        models = [m for m in _models_in(current) if name in m.model_fields]
        if not models:
            return ".".join(path[: depth + 1])
        current = models[0].model_fields[name].annotation
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation may hold: itself, a Union's or a tuple's members."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType, tuple, list, typing.Annotated):
        found = []
        for argument in typing.get_args(annotation):
            found += _models_in(argument)
        return found
    return []


def _signature(document: JsonSchema, node: JsonSchema) -> frozenset[str]:
    node = _resolve(document, node)
    kinds: set[str] = set()
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        kinds |= _signature(document, option)
    if "const" in node:
        kinds.add(f"const:{node['const']}")
    elif "enum" in node:
        kinds.add("enum")
    elif "properties" in node:
        kinds.add("object")
    declared = node.get("type")
    if isinstance(declared, str):
        kinds.add(declared)
    elif isinstance(declared, list):
        kinds |= set(declared)
    return frozenset(kinds)


def _enum_values(document: JsonSchema, node: JsonSchema) -> set[Any]:
    node = _resolve(document, node)
    values = set(node.get("enum", []))
    for option in node.get("anyOf", []) + node.get("oneOf", []):
        values |= _enum_values(document, option)
    return values


def _breaks(
    old_doc: JsonSchema, old: JsonSchema, new_doc: JsonSchema, new: JsonSchema, prefix: str
) -> list[str]:
    found: list[str] = []
    old_objects, new_objects = _objects(old_doc, old), _objects(new_doc, new)
    if not old_objects:
        return found
    old_props = {k: v for o in old_objects for k, v in o["properties"].items()}
    old_required = {r for o in old_objects for r in o.get("required", [])}
    new_props = {k: v for o in new_objects for k, v in o["properties"].items()}
    new_required = {r for o in new_objects for r in o.get("required", [])}
    for name, old_field in sorted(old_props.items()):
        path = f"{prefix}{name}"
        if name not in new_props:
            found.append(f"field {path!r} was removed")
            continue
        new_field = new_props[name]
        before, after = _signature(old_doc, old_field), _signature(new_doc, new_field)
        if after != before and after == before | {"null"}:
            found.append(f"field {path!r} may now be null")
            continue
        if before != after and not _widened(before, after):
            found.append(f"field {path!r} changed type from {sorted(before)} to {sorted(after)}")
            continue
        dropped = _enum_values(old_doc, old_field) - _enum_values(new_doc, new_field)
        if dropped:
            found.append(f"field {path!r} no longer allows {sorted(map(str, dropped))}")
        if name in old_required and name not in new_required and "default" not in new_field:
            found.append(f"field {path!r} is no longer required")
        found += _breaks(old_doc, old_field, new_doc, new_field, f"{path}.")
    return found


def _widened(before: frozenset[str], after: frozenset[str]) -> bool:
    """An integer field that became a number still reads the same values."""
    return before - {"integer"} == after - {"number"} and "integer" in before and "number" in after
