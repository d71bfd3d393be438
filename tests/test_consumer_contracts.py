"""Async consumer contracts: what each service declares it reads (``civicgrid.<service>.reads``)
holds against the producers' models and committed AsyncAPI documents, and today's documents
do not break the previous release's (docs/asyncapi/released/)."""

from __future__ import annotations

import copy
import importlib
import json
from typing import Any

import pytest

from civicgrid.cli.asyncapi_docs import DOCS_DIR
from civicgrid.events.contracts import (
    Reads,
    compatibility_problems,
    document_problems,
    event_schema,
    model_problems,
)
from civicgrid.events.ownership import SERVICES, WRITERS
from civicgrid.events.upcasting import _UPCASTERS

RELEASED_DIR = DOCS_DIR / "released"


def reads_of(service: str) -> Reads:
    reads: Reads = importlib.import_module(f"civicgrid.{service}.reads").READS
    return reads


def documents(directory: Any = DOCS_DIR) -> dict[str, dict[str, Any]]:
    return {s: json.loads((directory / f"{s}.json").read_text()) for s in SERVICES}


def upcasters() -> set[tuple[str, int]]:
    return set(_UPCASTERS)


@pytest.mark.parametrize("service", SERVICES)
def test_what_a_service_reads_is_in_the_producers_models(service: str) -> None:
    problems = model_problems(service, reads_of(service))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_what_a_service_reads_is_in_the_producers_committed_asyncapi_documents(
    service: str,
) -> None:
    problems = document_problems(service, reads_of(service), documents())
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("service", SERVICES)
def test_every_event_type_a_service_subscribes_to_is_declared(service: str) -> None:
    """Its consumers' filters name event types; each is declared, or the contract is blind."""
    document = documents()[service]
    declared = set(reads_of(service))
    subscribed = {
        channel["address"].rsplit(".", 1)[-1]
        for name, channel in document["channels"].items()
        if not name.startswith("incident.")
        and str(channel.get("address")).startswith("incident.*.")
    }
    assert subscribed <= declared, f"{service} subscribes to {subscribed - declared} undeclared"


@pytest.mark.parametrize("producer", [s for s in SERVICES if WRITERS[s]])
def test_todays_documents_keep_the_released_contract(producer: str) -> None:
    problems = compatibility_problems(
        documents(RELEASED_DIR)[producer], documents()[producer], producer, upcasters()
    )
    assert not problems, "\n".join(problems)


# --- the checks can fail, and say who breaks whom -----------------------------------------------


def _without(document: dict[str, Any], model: str, field: str) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    schema = changed["components"]["schemas"][model]
    del schema["properties"][field]
    if field in schema.get("required", []):
        schema["required"].remove(field)
    return changed


def test_a_producer_dropping_a_field_a_consumer_reads_names_both() -> None:
    docs = documents()
    docs["intake"] = _without(docs["intake"], "ReportDetails", "location")
    problems = document_problems("routing", reads_of("routing"), docs)
    assert problems
    assert all("routing reads reported.report.location" in p for p in problems), problems
    assert "docs/asyncapi/intake.json" in problems[0]


def test_a_consumer_reading_a_field_no_producer_writes_names_the_model() -> None:
    problems = model_problems("sla", {"assigned": ("sla_klass",), "teleported": ()})
    assert problems == [
        "sla reads assigned.sla_klass, but routing's model Assigned has no field 'sla_klass' there",
        problems[1],
    ]
    assert "sla reads 'teleported', but no producer writes that event type" in problems[1]


def test_a_removed_field_breaks_the_released_contract() -> None:
    released = documents(RELEASED_DIR)["routing"]
    current = _without(released, "Assigned", "sla_class")
    problems = compatibility_problems(released, current, "routing", upcasters())
    assert problems == [
        "routing's assigned (schema_version 1, as released): field 'sla_class' was removed;"
        " bump schema_version and add an upcaster, or keep the field as it was"
    ]


def test_a_retyped_or_narrowed_or_nullable_field_breaks_the_released_contract() -> None:
    released = documents(RELEASED_DIR)["sla"]
    current = copy.deepcopy(released)
    schemas = current["components"]["schemas"]
    schemas["SlaClockStarted"]["properties"]["clock_version"] = {"type": "string"}
    schemas["Escalated"]["properties"]["reason"] = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    schemas["ClockStopReason"]["enum"].remove("superseded")
    problems = "\n".join(compatibility_problems(released, current, "sla", upcasters()))
    assert "sla_clock_started (schema_version 1, as released): field 'clock_version' changed" in (
        problems
    )
    assert "escalated (schema_version 1, as released): field 'reason' may now be null" in problems
    assert "field 'reason' no longer allows ['superseded']" in problems


def test_a_new_schema_version_needs_an_upcaster_from_the_released_one() -> None:
    released = documents(RELEASED_DIR)["routing"]
    current = _without(released, "Assigned", "sla_class")
    version = current["components"]["schemas"]["Assigned"]["properties"]["schema_version"]
    version["default"] = 2
    problems = compatibility_problems(released, current, "routing", upcasters())
    assert problems == [
        "routing's assigned went from schema_version 1 to 2 without an upcaster from"
        " version(s) [1] (civicgrid.events.upcasting)"
    ]
    assert compatibility_problems(released, current, "routing", {("assigned", 1)}) == []


def test_adding_an_optional_field_keeps_the_released_contract() -> None:
    released = documents(RELEASED_DIR)["intake"]
    current = copy.deepcopy(released)
    schema = event_schema(current, "resolved")
    assert schema is not None
    schema["properties"]["photo_url"] = {"type": "string", "default": ""}
    assert compatibility_problems(released, current, "intake", upcasters()) == []
