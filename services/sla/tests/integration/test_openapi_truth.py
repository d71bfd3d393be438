"""sla's OpenAPI document tells the truth: schemathesis (bounded, fixed seed) against a running
sla service finds no 5xx, no undocumented status, no body outside its schema."""

from __future__ import annotations

import asyncio

from civicgrid.servicekit.apicheck import check_openapi, serving

from .conftest import StartSla


async def test_schemathesis_finds_the_document_truthful(start_sla: StartSla) -> None:
    sla = await start_sla()
    async with serving(sla.service.http) as base_url:
        report = await asyncio.to_thread(check_openapi, base_url, max_examples=10)
    assert report.operations >= 4 and report.requests > report.operations
    assert not report.failures, "\n\n".join(report.failures)
