"""A seconds-scale SLA policy, so breaches and the escalation ladder happen during a chaos test
(nobody accepts the load's incidents): every clock of every class is due within seconds, warns
half-way, breaches, then climbs two rungs that do not reassign (so the stream goes quiet)."""

from __future__ import annotations

import nats

from civicgrid.servicekit.seeds import NatsSeeds
from civicgrid.sla.domain.policy import SlaPolicyVersion
from civicgrid.sla.policy_store import publish_policy
from tests.support.sla import rung

LADDER_LEVELS = 2


def seconds_scale_policy() -> SlaPolicyVersion:
    on_site = {"accept": "4s", "arrive": "6s", "resolve": "8s"}
    elsewhere = {"accept": "4s", "resolve": "8s"}
    return SlaPolicyVersion.model_validate(
        {
            "policy_version": 1,
            "warning_ratios": (0.5,),
            "classes": {
                "standard": elsewhere,
                "difficult": elsewhere,
                "on_site": on_site,
                "urgent": on_site,
            },
            "ladder": (
                rung("community-head", "0s", "community_head"),
                rung("department-head", "1s", "department_head"),
            ),
        }
    )


async def publish_seconds_scale_policy(admin_seeds: str) -> None:
    """Before sla starts: it then keeps this as current instead of seeding the city's."""
    client = await nats.connect(**NatsSeeds.parse(admin_seeds).connect_options())
    try:
        await publish_policy(client.jetstream(), seconds_scale_policy())
    finally:
        await client.close()
