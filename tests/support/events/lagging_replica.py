"""A follower that lags behind, on a single real nats-server, for deterministic tests.

In a replicated stream with ``allow_direct`` a Direct Get may be answered by a follower that has
applied the stream only up to some sequence. On one server the same answers come from asking
with ``up_to_seq``: a multi-last read then answers what a replica at that sequence holds, and
ends with the same ``Nats-UpTo-Sequence``. (A per-subject read needs nothing: the store keeps
only what precedes each subject's last event in the multi-last answer, which a replica at that
sequence has.) ``LaggingReplica`` rewrites the multi-last Direct Gets sent on one connection
that way for its first ``reads`` of them; after those it has caught up.
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client as NatsClient

from civicgrid.events import streams


class LaggingReplica:
    def __init__(self, nc: NatsClient, *, applied: int, reads: int = 1) -> None:
        self.applied = applied
        self.reads_left = reads
        self.stale_answers = 0
        self._publish = nc.publish
        # Instance attribute over the method: only this connection's requests lag.
        nc.publish = self._lagging_publish  # type: ignore[method-assign,assignment]

    async def _lagging_publish(self, subject: str, payload: bytes = b"", **options: Any) -> None:
        if subject == f"$JS.API.DIRECT.GET.{streams.INCIDENTS}" and self.reads_left > 0:
            request = json.loads(payload)
            if "multi_last" in request:
                self.reads_left -= 1
                self.stale_answers += 1
                payload = json.dumps({**request, "up_to_seq": self.applied}).encode()
        await self._publish(subject, payload, **options)
