"""The no-logic relay of the platform's shape, the end-to-end baseline. Each part runs as its own
process, as the services do:

- ``ingress PORT URL SHAPE``: a bare ASGI handler under uvicorn (httptools and uvloop, as the
  services run) that writes the shape's claims (``relay_claim.<id>.<n>``), publishes the
  POSTed form (``relay.<id>.reported``, or ``relay.<id>.merged`` for the share of reports the
  platform merged into another) and answers 201 with the id, as intake's Open311 POST does;
- ``hop URL FROM TO PER_MESSAGE SCHEDULES SHAPE``: a durable pull consumer that, for each
  ``relay.<id>.FROM``, publishes PER_MESSAGE ``relay.<id>.TO`` events and SCHEDULES timer
  messages (``relay_timer.<id>.<n>``), a fetched batch's publishes all at once, then acks:
  routing's and sla's hop, without a decision;
- ``project URL DB``: an ordered read of ``relay.>`` into SQLite, one row per message and the
  position in the same transaction: reporting's projector, without the fold.

SHAPE says where the platform has more readers of every event than reporting's projector
(intake's duplicate index, sla's clock view): the ingress and the second hop then also run a
read of ``relay.>`` that drops what it reads. Per-message counts may be fractions (the platform's
averages, measured in the same run): each hop publishes so that its running total follows them.

``python -m bench.relay <part> ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from dataclasses import asdict, dataclass
from typing import Any

import nats
import uvicorn
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig

from civicgrid.servicekit.serving import run_on_uvloop

STREAM = "RELAY"
CLAIMS = "RELAY_CLAIMS"
TIMERS = "RELAY_TIMERS"


@dataclass(frozen=True)
class Shape:
    """Messages per accepted report. ``thin()`` is one publish per hop and one reader; ``of the
    platform`` comes from counting what the platform wrote for the same reports."""

    reported: float = 1.0  # reports that open an incident; the others are merged
    claims: float = 0.0  # intake's duplicate claims (KV writes)
    routed: float = 1.0  # events routing appends
    clocked: float = 1.0  # events sla appends
    schedules: float = 0.0  # timer schedules sla publishes
    extra_readers: bool = False  # intake's index and sla's clock view read every event too

    @classmethod
    def thin(cls) -> Shape:
        return cls()

    def encode(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def decode(cls, text: str) -> Shape:
        return cls(**json.loads(text))

    def describe(self) -> str:
        readers = 3 if self.extra_readers else 1
        return (
            f"{self.claims:.2f} claims, {self.reported:.2f} reported + {1 - self.reported:.2f} "
            f"merged, {self.routed:.2f} routed, {self.clocked:.2f} clock events, "
            f"{self.schedules:.2f} schedules per report; {readers} reader(s) of every event"
        )


async def ensure_streams(client: NatsClient) -> None:
    js = client.jetstream()
    subjects = {STREAM: "relay.>", CLAIMS: "relay_claim.>", TIMERS: "relay_timer.>"}
    for name, subject in subjects.items():
        await js.add_stream(StreamConfig(name=name, subjects=[subject], storage=StorageType.FILE))


class Paced:
    """How many to publish for the next message, so the running total follows a fractional rate."""

    def __init__(self, per_message: float) -> None:
        self.per_message, self.owed, self.done = per_message, 0.0, 0

    def next(self) -> int:
        self.owed += self.per_message
        count = int(self.owed) - self.done
        self.done += count
        return count


async def drop_reader(client: NatsClient) -> None:
    """A reader of every event that does nothing with them: the platform's other projections'
    share of the server and of the client library, without their folds."""
    subscription = await client.jetstream().pull_subscribe(
        "relay.>",
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
    )
    while True:
        try:
            await subscription.fetch(256, timeout=1)
        except TimeoutError:
            continue


async def ingress(port: int, url: str, shape: Shape) -> None:
    client = await nats.connect(url, name="relay-ingress")
    js = client.jetstream()
    claims, opened = Paced(shape.claims), Paced(shape.reported)
    if shape.extra_readers:
        reader = asyncio.create_task(drop_reader(client))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        status, answer = 200, b"ok"
        if scope["method"] == "POST":
            incident_id = os.urandom(10).hex()
            for n in range(claims.next()):
                await js.publish(f"relay_claim.{incident_id}.{n}", b"")
            kind = "reported" if opened.next() else "merged"
            await js.publish(f"relay.{incident_id}.{kind}", body)
            status, answer = 201, json.dumps([{"service_request_id": incident_id}]).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="httptools",
    )
    try:
        await uvicorn.Server(config).serve()
    finally:
        if shape.extra_readers:
            reader.cancel()


async def hop(url: str, source: str, target: str, per_message: float, schedules: float,
              with_reader: bool) -> None:  # fmt: skip
    client = await nats.connect(url, name=f"relay-{source}")
    js = client.jetstream()
    if with_reader:
        reader = asyncio.create_task(drop_reader(client))
    events, timers = Paced(per_message), Paced(schedules)
    subscription = await js.pull_subscribe(
        f"relay.*.{source}",
        durable=f"relay-{source}",
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL),
    )
    try:
        while True:
            try:
                batch = await subscription.fetch(64, timeout=1)
            except TimeoutError:
                continue
            # The whole batch's publishes at once, then its acks: a relay held back only by the
            # work, never by waiting for one ack before sending the next message.
            publishes = []
            for msg in batch:
                incident_id = msg.subject.split(".")[1]
                publishes += [
                    js.publish(f"relay.{incident_id}.{target}", msg.data)
                    for _ in range(events.next())
                ]
                publishes += [
                    js.publish(f"relay_timer.{incident_id}.{n}", b"") for n in range(timers.next())
                ]
            await asyncio.gather(*publishes)
            for msg in batch:
                await msg.ack()
    finally:
        if with_reader:
            reader.cancel()


async def project(url: str, database: str) -> None:
    client = await nats.connect(url, name="relay-projector")
    js = client.jetstream()
    db = sqlite3.connect(database)
    db.execute("CREATE TABLE IF NOT EXISTS facts (subject TEXT, sequence INTEGER, data BLOB)")
    db.execute("CREATE TABLE IF NOT EXISTS position (sequence INTEGER)")
    db.execute("INSERT INTO position VALUES (0)")
    db.commit()
    subscription = await js.pull_subscribe(
        "relay.>",
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
    )
    while True:
        try:
            batch = await subscription.fetch(256, timeout=1)
        except TimeoutError:
            continue
        rows = [(m.subject, m.metadata.sequence.stream, m.data) for m in batch]
        with db:
            db.executemany("INSERT INTO facts VALUES (?, ?, ?)", rows)
            db.execute("UPDATE position SET sequence = ?", (rows[-1][1],))


def parts(port: int, url: str, database: str, shape: Shape) -> dict[str, list[str]]:
    """The relay's processes (name -> ``bench.relay`` arguments), one per platform service."""
    encoded = shape.encode()
    # Routing's hop is driven by the reports that opened an incident, sla's by routing's events:
    # their rates are per message they read, not per report.
    per_reported = 1 / shape.reported if shape.reported else 0.0
    per_routed = 1 / shape.routed if shape.routed else 0.0
    return {
        "ingress": ["ingress", str(port), url, encoded],
        "hop reported": ["hop", url, "reported", "assigned", str(shape.routed * per_reported),
                         "0", "-"],
        "hop assigned": ["hop", url, "assigned", "clock_started", str(shape.clocked * per_routed),
                         str(shape.schedules * per_routed), "read" if shape.extra_readers else "-"],
        "project": ["project", url, database],
    }  # fmt: skip


def main(argv: list[str]) -> None:
    part, *args = argv
    with contextlib.suppress(KeyboardInterrupt):
        if part == "ingress":
            run_on_uvloop(ingress(int(args[0]), args[1], Shape.decode(args[2])))
        elif part == "hop":
            url, source, target, per_message, schedules, reader = args
            run_on_uvloop(
                hop(url, source, target, float(per_message), float(schedules), reader == "read")
            )
        elif part == "project":
            run_on_uvloop(project(args[0], args[1]))
        else:
            raise SystemExit(f"unknown part {part!r}: ingress, hop or project")


if __name__ == "__main__":
    main(sys.argv[1:])
