"""The committed AsyncAPI documents are the ones the code generates today."""

from __future__ import annotations

import json

import pytest

from civicgrid.cli.asyncapi_docs import DOCS_DIR, render
from civicgrid.events.ownership import SERVICES, WRITERS


@pytest.mark.parametrize("service", SERVICES)
def test_the_committed_asyncapi_document_is_current(service: str) -> None:
    committed = (DOCS_DIR / f"{service}.json").read_text()
    assert committed == render(service), f"docs/asyncapi/{service}.json is stale: make asyncapi"


@pytest.mark.parametrize("service", SERVICES)
def test_every_written_event_type_has_a_typed_channel(service: str) -> None:
    document = json.loads(render(service))
    for event_type in WRITERS[service]:
        channel = document["channels"][f"incident.{event_type}"]
        assert channel["address"] == f"incident.{{incident_id}}.{event_type}"
        message_ref = channel["messages"]["Event"]["$ref"].rsplit("/", 1)[-1]
        payload_ref = document["components"]["messages"][message_ref]["payload"]["$ref"]
        assert payload_ref.rsplit("/", 1)[-1] in document["components"]["schemas"]
