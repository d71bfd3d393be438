"""并单 claims (``civicgrid.intake.claims``) on a real server: the later of two near claims
sees the earlier one, claims of one matter at different places never meet, and reports of one
matter do not wait for each other unless they may be duplicates."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from nats.js import JetStreamContext

from civicgrid.events.base import GeoPoint
from civicgrid.events.ids import new_incident_id
from civicgrid.events.incident_events import Reported
from civicgrid.events.store import EventStore
from civicgrid.intake.app import IntakeApp
from civicgrid.intake.catalogue import InMemoryCatalogue
from civicgrid.intake.claims import Claim, DuplicateClaims
from civicgrid.intake.domain.duplicates import DuplicateRule
from civicgrid.intake.handlers import Intake
from civicgrid.intake.reports import CitizenAppReport
from tests.support.intake import fresh_matter, next_place, north_of

RULE = DuplicateRule(radius_m=100.0, window_minutes=60.0)


def claim_at(lon: float, lat: float) -> Claim:
    now = datetime.now(UTC)
    return Claim(new_incident_id(), GeoPoint(lon=lon, lat=lat), now, now)


async def test_the_later_of_two_near_claims_sees_the_earlier_and_not_the_other_way(
    js: JetStreamContext, catalogue: InMemoryCatalogue
) -> None:
    claims = DuplicateClaims(lambda: js)
    matter = fresh_matter(catalogue).code
    lon, lat = next_place()
    first, before_first = await claims.claim(matter, claim_at(lon, lat), RULE)
    second, before_second = await claims.claim(matter, claim_at(*north_of(lon, lat, 60)), RULE)
    assert before_first == []
    assert [c.incident_id for c in before_second] == [first.claim.incident_id]
    assert before_second == await claims.earlier_near(second, RULE)
    assert await claims.earlier_near(first, RULE) == []
    await claims.withdraw(first)
    assert await claims.earlier_near(second, RULE) == []


async def test_claims_of_one_matter_apart_or_of_another_matter_do_not_meet(
    js: JetStreamContext, catalogue: InMemoryCatalogue
) -> None:
    claims = DuplicateClaims(lambda: js)
    matter, other = fresh_matter(catalogue).code, fresh_matter(catalogue).code
    lon, lat = next_place()
    await claims.claim(matter, claim_at(lon, lat), RULE)
    await claims.claim(other, claim_at(*north_of(lon, lat, 10)), RULE)
    beyond, before = await claims.claim(matter, claim_at(*north_of(lon, lat, 150)), RULE)
    assert before == []
    assert await claims.earlier_near(beyond, RULE) == []


class HeldStore:
    """The real store, but the append of a new incident at ``held`` waits to be released."""

    def __init__(self, store: EventStore, held: GeoPoint) -> None:
        self._store, self._held = store, held
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def append_decision(self, events: Any, **kwargs: Any) -> Any:
        first = events[0]
        if isinstance(first, Reported) and first.report.location == self._held:
            self.entered.set()
            await self.release.wait()
        return await self._store.append_decision(events, **kwargs)


async def test_a_report_of_one_matter_elsewhere_does_not_wait_for_another(
    intake: IntakeApp, store: EventStore, catalogue: InMemoryCatalogue
) -> None:
    """The old per-matter lock made every report of a matter wait for the one before it."""
    matter = fresh_matter(catalogue).code
    here, elsewhere = next_place(), next_place()
    held = HeldStore(store, GeoPoint(lon=here[0], lat=here[1]))
    ports = Intake(
        lambda: held,  # type: ignore[arg-type,return-value]
        intake.index,
        intake.intake.catalogue,
        intake.intake.metrics,
        intake.intake.claims,
    )

    def report(lon: float, lat: float) -> CitizenAppReport:
        body = {"channel": "citizen_app", "category": matter, "location": {"lon": lon, "lat": lat}}
        return CitizenAppReport.model_validate(body)

    first = asyncio.create_task(ports.report(report(*here), system="dev", key=None))
    try:
        await asyncio.wait_for(held.entered.wait(), timeout=10)
        other = await asyncio.wait_for(
            ports.report(report(*elsewhere), system="dev", key=None), timeout=10
        )
        assert other.outcome == "created"
        assert not first.done()
    finally:
        held.release.set()
    assert (await first).outcome == "created"


async def test_one_problem_reported_twice_at_once_to_one_replica_opens_one_incident(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    """No lock per matter any more: the claims alone decide, within a replica as across."""
    for _ in range(10):
        matter = fresh_matter(catalogue).code
        lon, lat = next_place()
        bodies = [
            {"channel": "citizen_app", "category": matter, "location": {"lon": x, "lat": y}}
            for x, y in ((lon, lat), north_of(lon, lat, 20), north_of(lon, lat, 40))
        ]
        responses = await asyncio.gather(
            *(http.post("/api/v1/reports", json=body) for body in bodies)
        )
        assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
        assert sorted(r.json()["outcome"] for r in responses) == ["created", "merged", "merged"]
        assert len({r.json()["incident_id"] for r in responses}) == 1


async def test_many_reports_of_one_place_at_once_all_join_one_incident(
    http: httpx.AsyncClient, catalogue: InMemoryCatalogue
) -> None:
    """A storm at one spot: every report is taken (none refused for contention), one incident."""
    matter = fresh_matter(catalogue).code
    lon, lat = next_place()
    bodies = [
        {"channel": "citizen_app", "category": matter, "location": {"lon": x, "lat": y}}
        for x, y in (north_of(lon, lat, n) for n in range(30))
    ]
    responses = await asyncio.gather(*(http.post("/api/v1/reports", json=b) for b in bodies))
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert len({r.json()["incident_id"] for r in responses}) == 1
    assert sorted(r.json()["outcome"] for r in responses) == ["created"] + ["merged"] * 29
