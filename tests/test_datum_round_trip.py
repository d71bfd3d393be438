"""The city speaks one datum, WGS84: a point in a micro-grid of the shipped city, sent in WGS84
to Open311 and in declared GCJ-02 to the native API, is routed to that micro-grid both times;
and routing's explain, which takes WGS84, finds it there too."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest_asyncio
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, KeyValueConfig, StorageType

from civicgrid.city.datum import wgs84_to_gcj02
from civicgrid.events.consumer import ConsumerSpec
from civicgrid.events.incident_events import Assigned
from civicgrid.events.store import EventStore
from civicgrid.intake.app import IntakeApp, compose
from civicgrid.intake.config import IntakeConfig
from civicgrid.routing.app import CONSUMER, build
from civicgrid.routing.config import RoutingConfig, load_routing_config
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.events.waiting import eventually
from tests.support.intake import DEV_KEY, intake_settings, keys


@pytest_asyncio.fixture
async def platform(
    nats_server: EmbeddedNats, js: JetStreamContext
) -> AsyncIterator[tuple[IntakeApp, Service, RoutingConfig]]:
    """Intake and routing with the shipped city; routing sees only new incidents."""
    intake = compose(
        intake_settings(nats_server.client_url, instance="intake-datum"),
        keys=keys(),
        config=IntakeConfig(dev_api_key=None, api_keys_file=None, max_body_bytes=65536),
    )
    routing_config = load_routing_config(None)
    bucket = f"ROUTING_POLICY_D{uuid.uuid4().hex[:12]}"
    await js.create_key_value(KeyValueConfig(bucket=bucket, history=8, storage=StorageType.MEMORY))
    durable = f"routing-datum-{uuid.uuid4().hex[:8]}"
    routing = build(
        ServiceSettings(
            service="routing",
            nats_url=nats_server.client_url,
            http_host="127.0.0.1",
            http_port=0,
            config_dir=None,
            log_level="WARNING",
            instance="routing-datum",
            stream_replicas=1,
        ),
        config=routing_config,
        consumer=ConsumerSpec(
            service="routing",
            durable=durable,
            filter_subjects=CONSUMER.filter_subjects,
            backoff_s=(0.05, 0.1),
            deliver_policy=DeliverPolicy.NEW,
        ),
        policy_bucket=bucket,
        policy_refresh_s=0.0,
    )
    await intake.service.start()
    await routing.start()

    async def ready() -> bool:
        return not await intake.service.problems() and not await routing.problems()

    await eventually(ready, what="intake and routing ready")
    yield intake, routing, routing_config
    await routing.stop()
    await intake.service.stop()
    await js.delete_consumer("INCIDENTS", durable)
    await js.delete_key_value(bucket)


async def _assigned(store: EventStore, incident_id: str) -> Assigned:
    async def probe() -> Assigned | None:
        history = await store.load(incident_id)
        found = [s.event for s in history.events if isinstance(s.event, Assigned)]
        return found[0] if found else None

    return await eventually(probe, what=f"{incident_id} assigned")


async def test_wgs84_to_open311_and_declared_gcj02_to_the_native_api_reach_one_micro_grid(
    platform: tuple[IntakeApp, Service, RoutingConfig], store: EventStore
) -> None:
    intake, routing, config = platform
    city = config.city
    grid_matters = [m.code for m in city.city.matters if m.handling_level == "grid"]
    open311_category, native_category = grid_matters[0], grid_matters[1]
    micro = city.city.micro_grids[len(city.city.micro_grids) // 2]
    lon, lat = city.index.random_point_in(micro.id, np.random.default_rng(7))
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    located = city.locate(gcj_lon, gcj_lat)
    # The control: read as WGS84, the GCJ-02 numbers lie hundreds of metres away.
    assert located is None or located.micro_grid_id != micro.id

    transport = httpx.ASGITransport(app=intake.service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://intake") as http:
        by_open311 = await http.post(
            "/open311/v2/requests.json",
            data={
                "api_key": DEV_KEY,
                "service_code": open311_category,
                "lat": str(lat),
                "long": str(lon),
                "description": "datum round trip (WGS84)",
            },
        )
        assert by_open311.status_code == 201, by_open311.text
        by_native = await http.post(
            "/api/v1/reports",
            headers={"X-API-Key": DEV_KEY},
            json={
                "channel": "citizen_app",
                "category": native_category,
                "location": {"lon": gcj_lon, "lat": gcj_lat},
                "crs": "GCJ-02",
                "description": "datum round trip (GCJ-02, declared)",
            },
        )
        assert by_native.status_code == 201, by_native.text
        shown = (
            await http.get(
                f"/open311/v2/requests/{by_open311.json()[0]['service_request_id']}.json"
            )
        ).json()[0]
    assert (shown["long"], shown["lat"]) == (round(lon, 7), round(lat, 7))

    first = await _assigned(store, by_open311.json()[0]["service_request_id"])
    second = await _assigned(store, by_native.json()["incident_id"])
    assert first.jurisdiction.micro_grid_id == micro.id
    assert second.jurisdiction.micro_grid_id == micro.id

    transport = httpx.ASGITransport(app=routing.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        explained = await client.get(
            "/api/v1/explain", params={"lon": lon, "lat": lat, "category": open311_category}
        )
    assert explained.status_code == 200, explained.text
    assert explained.json()["located"]["micro_grid_id"] == micro.id
