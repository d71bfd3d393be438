"""SLA policy versions in the NATS key-value bucket ``SLA_POLICY``, kept as every policy is
(``civicgrid.events.policy_versions``): key ``v<N>`` written once, ``current`` moved forward
only; clocks in flight keep deciding with the version they started under.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from nats.js import JetStreamContext

from civicgrid.events.policy_versions import PolicyBook as GenericPolicyBook
from civicgrid.events.policy_versions import PolicyMissing, PolicyVersionConflict, PolicyVersions
from civicgrid.events.streams import SLA_POLICY_BUCKET
from civicgrid.sla.domain.policy import SlaPolicyVersion


def _versions(bucket: str) -> PolicyVersions[SlaPolicyVersion]:
    return PolicyVersions(SlaPolicyVersion.model_validate_json, bucket=bucket, what="SLA policy")


async def publish_policy(
    js: JetStreamContext, policy: SlaPolicyVersion, *, bucket: str = SLA_POLICY_BUCKET
) -> int:
    """Store ``policy`` as its version and make it current; a retry of the same is a no-op."""
    return await _versions(bucket).publish(js, policy)


async def seed_policy(
    js: JetStreamContext, policy: SlaPolicyVersion, *, bucket: str = SLA_POLICY_BUCKET
) -> int:
    """At start: publish the configured policy if the bucket has none; returns current."""
    return await _versions(bucket).seed(js, policy)


class PolicyBook(GenericPolicyBook[SlaPolicyVersion]):
    """Any SLA policy version by number, and the current one within ``refresh_s``."""

    def __init__(
        self,
        jetstream: Callable[[], JetStreamContext],
        *,
        bucket: str = SLA_POLICY_BUCKET,
        refresh_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(_versions(bucket), jetstream, refresh_s=refresh_s, clock=clock)

    async def for_incident(self, pinned: int | None) -> SlaPolicyVersion:
        """The version a clock started under, or the current one for a new clock."""
        return await self.version(pinned) if pinned is not None else await self.current()


__all__ = ["PolicyBook", "PolicyMissing", "PolicyVersionConflict", "publish_policy", "seed_policy"]
