"""Two commands on one incident at once.

The decision: a writer that loses the race (``ConcurrencyConflict``) reloads and decides
again, and the state judges the retry. So of two conflicting commands exactly one wins and
the other gets the 409 the new state gives ("already accepted"); two commands that do not
conflict (an arrival and an extension) both go through. Refusing every loser outright would
turn harmless races into errors that handlers would have to retry by hand.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from civicgrid.events.store import EventStore, History
from civicgrid.intake.app import IntakeApp
from civicgrid.intake.domain.commands import Accept, Arrive, Extend
from civicgrid.intake.errors import Refused
from civicgrid.intake.handlers import Intake
from tests.support.intake import DEPARTMENT, GRID, NEVER_MERGES, assign, next_place, start_clock

LEAD = {"unit": GRID.model_dump(mode="json")}


async def accepted_incident(http: httpx.AsyncClient, store: EventStore, *, accept: bool) -> str:
    lon, lat = next_place()
    body = {
        "channel": "citizen_app",
        "category": NEVER_MERGES.code,
        "location": {"lon": lon, "lat": lat},
    }
    incident_id = str((await http.post("/api/v1/reports", json=body)).json()["incident_id"])
    await assign(store, incident_id)
    if accept:
        assert (await http.post(f"/api/v1/incidents/{incident_id}/accept", json=LEAD)).is_success
    return incident_id


async def test_two_accepts_at_once_exactly_one_wins(
    http: httpx.AsyncClient, store: EventStore
) -> None:
    incident_id = await accepted_incident(http, store, accept=False)
    url = f"/api/v1/incidents/{incident_id}/accept"
    responses = await asyncio.gather(
        http.post(url, json=LEAD, headers={"Idempotency-Key": "phone-1"}),
        http.post(url, json=LEAD, headers={"Idempotency-Key": "tablet-1"}),
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert "already accepted" in loser.json()["errors"][0]["reason"]
    history = await store.load(incident_id)
    assert [e.event_type for e in history].count("accepted") == 1


class RacingStore:
    """The real store, but another writer appends right after this one first reads."""

    def __init__(self, store: EventStore, rival: Any) -> None:
        self._store, self._rival = store, rival

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        history = await self._store.load(incident_id, at_least=at_least)
        if self._rival is not None:
            rival, self._rival = self._rival, None
            await rival()
        return history


def racing(intake: IntakeApp, store: EventStore, rival: Any) -> Intake:
    racing_store = RacingStore(store, rival)
    return Intake(
        lambda: racing_store,  # type: ignore[arg-type,return-value]
        intake.index,
        intake.intake.catalogue,
        intake.intake.metrics,
        intake.intake.claims,
    )


def retries(intake: IntakeApp) -> float:
    registry = intake.service.registry
    return sum(
        registry.get_sample_value(
            "civicgrid_intake_concurrency_retries_total", {"operation": operation}
        )
        or 0.0
        for operation in ("accept", "extend")
    )


async def test_a_conflicting_command_is_retried_and_then_refused_by_the_new_state(
    http: httpx.AsyncClient, store: EventStore, intake: IntakeApp
) -> None:
    incident_id = await accepted_incident(http, store, accept=False)

    async def rival_accepts() -> None:
        await intake.intake.command(incident_id, Accept(unit=GRID), system="tablet", command_id="t")

    before = retries(intake)
    contender = racing(intake, store, rival_accepts)
    try:
        await contender.command(incident_id, Accept(unit=GRID), system="phone", command_id="p")
    except Refused as refusal:
        assert refusal.status == 409 and "already accepted" in refusal.problems[0].reason
    else:
        raise AssertionError("the second accept went through")
    assert retries(intake) == before + 1
    assert [e.event_type for e in await store.load(incident_id)].count("accepted") == 1


async def test_a_command_that_does_not_conflict_goes_through_after_the_retry(
    http: httpx.AsyncClient, store: EventStore, intake: IntakeApp
) -> None:
    incident_id = await accepted_incident(http, store, accept=True)
    await start_clock(store, incident_id, "resolve")

    async def rival_arrives() -> None:
        await intake.intake.command(incident_id, Arrive(unit=GRID), system="app", command_id="a")

    before = retries(intake)
    extension = Extend(
        approved_by=DEPARTMENT,
        clock="resolve",
        new_due_at=datetime.now(UTC) + timedelta(days=5),
        reason="waiting for parts",
    )
    outcome = await racing(intake, store, rival_arrives).command(
        incident_id, extension, system="dept", command_id="e"
    )
    assert outcome.outcome == "applied"
    assert retries(intake) == before + 1
    types = [e.event_type for e in await store.load(incident_id)]
    assert types[-2:] == ["arrived", "deadline_extended"]
