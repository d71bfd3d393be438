"""Reporting's figures against a recount from the stream: reporting's own fold
(``civicgrid.reporting.facts.project``) and its plain-Python recount (no SQL) over every event
the ledger read, compared with what each reporting replica's statistics API answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx

from civicgrid.reporting.facts import IncidentFact, project
from civicgrid.reporting.figures import Dimension
from tests.support.events.waiting import eventually
from tests.support.ledger import Ledger
from tests.support.reporting.recount import recount

CAUGHT_UP_WITHIN_S = 60.0


def recounted(ledger: Ledger) -> dict[str | None, dict[str, int | tuple[int, int]]]:
    facts: dict[str, IncidentFact] = {}
    for sequence, event in zip(ledger.sequences, ledger.events, strict=True):
        folded = project(facts.get(event.incident_id), event, sequence)
        if folded is not None:
            facts[event.incident_id] = folded
    return recount(facts.values(), Dimension.COMMUNITY, datetime.now(UTC))


async def reporting_problems(ledger: Ledger, reporting_urls: list[str]) -> list[str]:
    """How each reporting replica's per-community figures differ from the recount."""
    expected = recounted(ledger)
    problems = []
    async with httpx.AsyncClient(timeout=10) as http:
        for url in reporting_urls:

            async def caught_up(url: str = url) -> dict[str, Any] | None:
                try:
                    response = await http.get(
                        f"{url}/api/v1/stats/communities",
                        params={"min_sequence": ledger.last_sequence},
                    )
                except httpx.HTTPError:
                    return None
                body: dict[str, Any] = response.json() if response.status_code == 200 else {}
                return body or None

            answer = await eventually(
                caught_up, within_s=CAUGHT_UP_WITHIN_S, interval_s=0.5, what=f"{url} caught up"
            )
            rows = {row["key"]: row for row in answer["rows"]}
            for community, figures in expected.items():
                row = rows.get(community, {})
                got = {
                    name: (value["numerator"], value["denominator"])
                    if isinstance(value, dict)
                    else value
                    for name, value in row.items()
                    if name in figures
                }
                if got != figures:
                    problems.append(f"{url} community {community}: {got} != recount {figures}")
            extra = [k for k, row in rows.items() if k not in expected and row.get("reported")]
            if extra:
                problems.append(f"{url} counts reports in communities the stream has none: {extra}")
    return problems
