"""Routing's OpenAPI document tells the truth: schemathesis (bounded, fixed seed) against a
running routing service finds no 5xx, no undocumented status, no body outside its schema."""

from __future__ import annotations

import asyncio

from civicgrid.servicekit.apicheck import check_openapi, serving
from tests.support.routing import StartRouting


async def test_schemathesis_finds_the_document_truthful(start_routing: StartRouting) -> None:
    service = await start_routing()
    async with serving(service.http) as base_url:
        report = await asyncio.to_thread(check_openapi, base_url, max_examples=25)
    assert report.operations == 1 and report.requests > 25
    assert not report.failures, "\n\n".join(report.failures)
    document = service.http.openapi()
    responses = document["paths"]["/api/v1/explain"]["get"]["responses"]
    assert set(responses) == {"200", "400", "404", "503"}
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BadRequest"
    }
