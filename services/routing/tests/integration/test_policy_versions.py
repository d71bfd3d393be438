"""Live rule changes: versions in the ROUTING_POLICY bucket, in-flight incidents keep theirs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from nats.js import JetStreamContext

from civicgrid.events.incident_events import HandlingLevel, ReturnReason
from civicgrid.routing.config import RoutingConfig
from civicgrid.routing.domain import MatterOverride, RoutingPolicy
from civicgrid.routing.policy import (
    CURRENT_KEY,
    PolicyBook,
    PolicyMissing,
    PolicyVersionConflict,
    publish_policy,
    version_key,
)
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.routing import Incidents, StartRouting, returned_by


def version_2(config: RoutingConfig, **changes: Any) -> RoutingPolicy:
    fields = {
        **config.configured_policy.model_dump(),
        "policy_version": 2,
        "max_returns_before_final_ruling": 1,
        "note": "one return, then the command centre rules",
        **changes,
    }
    return RoutingPolicy.model_validate(fields)


async def test_routing_seeds_the_configured_policy_into_an_empty_bucket(
    start_routing: StartRouting,
    js: JetStreamContext,
    policy_bucket: str,
    routing_config: RoutingConfig,
) -> None:
    await start_routing()
    kv = await js.key_value(policy_bucket)
    assert (await kv.get(CURRENT_KEY)).value == b"1"
    stored = RoutingPolicy.model_validate_json((await kv.get(version_key(1))).value or b"")
    assert stored == routing_config.configured_policy
    assert stored.max_returns_before_final_ruling == 3


async def test_an_incident_in_flight_keeps_its_version_while_a_new_one_gets_the_new_version(
    start_routing: StartRouting,
    incidents: Incidents,
    js: JetStreamContext,
    policy_bucket: str,
    routing_config: RoutingConfig,
) -> None:
    await start_routing()
    category = incidents.matter_at("department")
    in_flight = await incidents.report(category, incidents.point_in("c05-g001"))
    [before] = await incidents.wait_for(in_flight.incident_id, 1)
    assert before.policy_version == 1

    assert await publish_policy(js, version_2(routing_config), bucket=policy_bucket) == 2
    newcomer = await incidents.report(category, incidents.point_in("c05-g001"))
    [after] = await incidents.wait_for(newcomer.incident_id, 1)
    assert after.policy_version == 2

    for incident_id, current in ((in_flight.incident_id, before), (newcomer.incident_id, after)):
        await incidents.append(
            returned_by(current.lead_unit, incident_id, ReturnReason.NOT_OUR_DUTY)
        )
    old_rules = (await incidents.wait_for(in_flight.incident_id, 2))[-1]
    new_rules = (await incidents.wait_for(newcomer.incident_id, 2))[-1]
    assert (old_rules.policy_version, old_rules.final_ruling) == (1, False)
    assert old_rules.rule == "return.not_our_duty.fallback_unit"
    assert (new_rules.policy_version, new_rules.final_ruling) == (2, True)
    assert new_rules.rule == "return.final_ruling"


async def test_a_matter_override_published_while_running_applies_to_new_reports(
    start_routing: StartRouting,
    incidents: Incidents,
    js: JetStreamContext,
    policy_bucket: str,
    routing_config: RoutingConfig,
) -> None:
    service = await start_routing()
    category = incidents.matter_at("grid")
    override = {category: MatterOverride(handling_level="community")}
    await publish_policy(
        js, version_2(routing_config, matter_overrides=override), bucket=policy_bucket
    )
    report = await incidents.report(category, incidents.point_in("c04-g002"))
    [assigned] = await incidents.wait_for(report.incident_id, 1)
    assert (assigned.level, assigned.lead_unit.id) == (HandlingLevel.COMMUNITY, "c04")
    assert assigned.policy_version == 2

    transport = httpx.ASGITransport(app=service.http)
    async with httpx.AsyncClient(transport=transport, base_url="http://routing") as client:
        point = incidents.point_in("c04-g002")
        params: dict[str, str | float] = {"lon": point.lon, "lat": point.lat, "category": category}
        now = (await client.get("/api/v1/explain", params=params)).json()
        then = (await client.get("/api/v1/explain", params={**params, "policy_version": 1})).json()
    assert (now["level"], now["policy_version"]) == ("community", 2)
    assert (then["level"], then["policy_version"]) == ("grid", 1)


async def test_publishing_is_idempotent_immutable_and_never_moves_current_backwards(
    js: JetStreamContext, policy_bucket: str, routing_config: RoutingConfig
) -> None:
    v1 = routing_config.configured_policy
    assert await publish_policy(js, v1, bucket=policy_bucket) == 1
    assert await publish_policy(js, v1, bucket=policy_bucket) == 1, "a retry is a no-op"
    with pytest.raises(PolicyVersionConflict, match="already published with other rules"):
        await publish_policy(
            js, v1.model_copy(update={"nearest_grid_tolerance_m": 5.0}), bucket=policy_bucket
        )
    v3 = version_2(routing_config, policy_version=3)
    assert await publish_policy(js, v3, bucket=policy_bucket) == 3
    with pytest.raises(PolicyVersionConflict, match="older than the current 3"):
        await publish_policy(js, version_2(routing_config), bucket=policy_bucket)

    book = PolicyBook(lambda: js, bucket=policy_bucket, refresh_s=0)
    assert (await book.current()).policy_version == 3
    assert await book.version(1) == v1
    with pytest.raises(PolicyMissing, match="version 2 is not in"):
        await book.version(2)


async def test_the_cli_publishes_a_policy_file_and_refuses_unknown_units(
    nats_server: EmbeddedNats, js: JetStreamContext, policy_bucket: str, tmp_path: Path
) -> None:
    good = tmp_path / "routing-v2.yaml"
    good.write_text(
        "policy_version: 2\nmax_returns_before_final_ruling: 2\nnearest_grid_tolerance_m: 300\n"
        "note: fewer returns\n",
        encoding="utf-8",
    )
    bad = tmp_path / "routing-v3.yaml"
    bad.write_text(
        "policy_version: 3\nmax_returns_before_final_ruling: 2\nnearest_grid_tolerance_m: 300\n"
        "matter_overrides:\n  city-appearance.illegal-parking: {lead_unit: dept-ghost}\n",
        encoding="utf-8",
    )
    common = ["--nats", nats_server.client_url, "--bucket", policy_bucket]

    published = await _cli("publish", str(good), *common)
    refused = await _cli("publish", str(bad), *common)

    assert published.returncode == 0, published.stderr
    assert "published version 2; current is 2" in published.stdout
    assert refused.returncode == 2
    assert "no unit 'dept-ghost'" in refused.stderr
    kv = await js.key_value(policy_bucket)
    assert (await kv.get(CURRENT_KEY)).value == b"2"


async def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "civicgrid.routing.policy",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())
