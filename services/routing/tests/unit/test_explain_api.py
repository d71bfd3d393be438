"""GET /api/v1/explain: where a report would go and why; clear 400s for bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI

from civicgrid.routing.domain import RoutingPolicy
from civicgrid.routing.http import install_explain
from civicgrid.routing.policy import PolicyMissing
from tests.support.routing import (
    ILLEGAL_PARKING,
    POLICY_V1,
    STREET_VENDING,
    FakeCity,
    centre_of,
    metres_east_of_city,
)

VENDING = STREET_VENDING


class OnePolicy:
    async def current(self) -> RoutingPolicy:
        return POLICY_V1

    async def version(self, number: int) -> RoutingPolicy:
        if number != 1:
            raise PolicyMissing(f"version {number}")
        return POLICY_V1


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_explain(app, FakeCity(), OnePolicy())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        yield client


async def test_explain_says_where_a_report_would_go_and_why(client: httpx.AsyncClient) -> None:
    point = centre_of("c01-g002")
    response = await client.get(
        "/api/v1/explain",
        params={"lon": point.lon, "lat": point.lat, "category": STREET_VENDING},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["level"] == "grid"
    assert body["lead_unit"] == {
        "kind": "grid",
        "id": "c01-g002",
        "name": "c01-g002网格",
        "name_en": "Grid c01-g002",
    }
    assert body["rule"] == "grid.inside"
    assert body["policy_version"] == 1
    assert body["located"]["micro_grid_id"] == "c01-g002-m01"
    assert body["jurisdiction"]["community_id"] == "c01"
    assert [unit["id"] for unit in body["supporting_units"]] == ["dept-market"]
    assert body["reasons"][0]["en"].startswith("Matter city-appearance.street-vending")
    assert "事项" in body["reasons"][0]["zh"]
    assert body["explanation"].count(" / ") == 1


async def test_explain_of_a_point_outside_the_city_names_the_command_centre(
    client: httpx.AsyncClient,
) -> None:
    point = metres_east_of_city(3000)
    body = (
        await client.get(
            "/api/v1/explain",
            params={"lon": point.lon, "lat": point.lat, "category": ILLEGAL_PARKING},
        )
    ).json()
    assert (body["level"], body["rule"]) == ("command_centre", "command_centre.outside_city")
    assert body["located"] is None
    assert "beyond the 500 m tolerance" in body["explanation"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"lon": "120.5", "lat": "27.5", "category": "no.such"}, "unknown category 'no.such'"),
        ({"lon": "200", "lat": "27.5", "category": STREET_VENDING}, "lon: Input should be less"),
        (
            {"lon": "120.5", "lat": "-95", "category": STREET_VENDING},
            "lat: Input should be greater",
        ),
        (
            {"lon": "east", "lat": "27.5", "category": STREET_VENDING},
            "lon: Input should be a valid",
        ),
        ({"lon": "nan", "lat": "27.5", "category": STREET_VENDING}, "lon: "),
        ({"lon": "120.5", "lat": "27.5"}, "category: Field required"),
    ],
)
async def test_bad_input_is_a_400_with_a_clear_message(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get("/api/v1/explain", params=params)
    assert response.status_code == 400
    assert message in response.json()["detail"]


async def test_an_unknown_policy_version_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/explain",
        params={"lon": 120.505, "lat": 27.505, "category": STREET_VENDING, "policy_version": 9},
    )
    assert response.status_code == 404
    assert response.json()["detail"] == "no routing policy version 9"


class UnreachablePolicies:
    async def current(self) -> RoutingPolicy:
        raise TimeoutError("nats: timeout")

    async def version(self, number: int) -> RoutingPolicy:
        raise TimeoutError("nats: timeout")


async def test_an_unreachable_policy_store_is_a_503_that_says_retry() -> None:
    app = FastAPI()
    install_explain(app, FakeCity(), UnreachablePolicies())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        response = await client.get(
            "/api/v1/explain", params={"lon": 120.505, "lat": 27.505, "category": STREET_VENDING}
        )
    assert response.status_code == 503
    assert response.json() == {"detail": "the routing policy cannot be read now; retry"}
