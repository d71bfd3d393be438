"""The no-logic relay of the platform's shape, the end-to-end baseline. Each part runs as its own
process, as the services do:

- ``ingress PORT URL``: a bare ASGI handler under uvicorn that publishes the POSTed form to
  JetStream (``relay.<id>.reported``) and answers 201 with the id, as intake's Open311 POST does;
- ``hop URL FROM TO``: a durable pull consumer that, for each ``relay.<id>.FROM``, publishes
  ``relay.<id>.TO`` (waiting for the ack) and acks: routing's and sla's hop, without a decision;
- ``project URL DB``: an ordered read of ``relay.>`` into SQLite, one row per message and the
  position in the same transaction: reporting's projector, without the fold.

``python -m bench.relay <part> ...``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import sys
from typing import Any

import nats
import uvicorn
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

STREAM = "RELAY"


async def ingress(port: int, url: str) -> None:
    client = await nats.connect(url, name="relay-ingress")
    js = client.jetstream()

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
            await js.publish(f"relay.{incident_id}.reported", body)
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
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off"
    )
    await uvicorn.Server(config).serve()


async def hop(url: str, source: str, target: str) -> None:
    client = await nats.connect(url, name=f"relay-{source}")
    js = client.jetstream()
    subscription = await js.pull_subscribe(
        f"relay.*.{source}",
        durable=f"relay-{source}",
        stream=STREAM,
        config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL),
    )
    while True:
        try:
            batch = await subscription.fetch(64, timeout=1)
        except TimeoutError:
            continue
        for msg in batch:
            incident_id = msg.subject.split(".")[1]
            await js.publish(f"relay.{incident_id}.{target}", msg.data)
            await msg.ack()


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


def main(argv: list[str]) -> None:
    part, *args = argv
    with contextlib.suppress(KeyboardInterrupt):
        if part == "ingress":
            asyncio.run(ingress(int(args[0]), args[1]))
        elif part == "hop":
            asyncio.run(hop(args[0], args[1], args[2]))
        elif part == "project":
            asyncio.run(project(args[0], args[1]))
        else:
            raise SystemExit(f"unknown part {part!r}: ingress, hop or project")


if __name__ == "__main__":
    main(sys.argv[1:])
