"""``civicgrid dlq``: list, show and replay dead letters (the DLQ stream, ``dlq.<service>``).

A replay does not publish the original again: for an incident event that would be a second copy
of an event that is still in INCIDENTS. It asks the consumer that gave up on the message to
handle it again (a request on ``dlq.redrive.<service>.<durable>``, see events/redrive.py); the
service's handlers are idempotent, so replaying something already handled does nothing.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from civicgrid.events import streams, subjects
from civicgrid.events.dead_letters import DeadLetter
from civicgrid.events.redrive import SUFFIX, request_replay
from civicgrid.servicekit.seeds import NatsSeeds

IDLE_S = 1.0


async def letters(
    js: JetStreamContext, service: str | None = None
) -> AsyncIterator[tuple[int, DeadLetter]]:
    """Every dead letter in the DLQ (of one service), oldest first, with its DLQ sequence."""
    subject = subjects.dlq(service) if service else f"{subjects.DLQ_PREFIX}.*"
    sub = await js.subscribe(subject, stream=streams.DLQ, ordered_consumer=True)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=IDLE_S)
            except TimeoutError:
                return
            yield msg.metadata.sequence.stream, DeadLetter.model_validate_json(msg.data)
            if msg.metadata.num_pending == 0:
                return
    finally:
        await sub.unsubscribe()


async def letter_at(js: JetStreamContext, sequence: int) -> DeadLetter:
    try:
        raw = await js.get_msg(streams.DLQ, sequence)
    except NotFoundError:
        raise SystemExit(f"no message {sequence} in the DLQ (expired, or never there)") from None
    if raw.subject is None or not raw.subject.startswith(f"{subjects.DLQ_PREFIX}."):
        raise SystemExit(f"DLQ message {sequence} is not a dead letter")
    if raw.subject.startswith(f"{subjects.DLQ_PREFIX}.redrive."):
        raise SystemExit(f"DLQ message {sequence} is a replay request, not a dead letter")
    return DeadLetter.model_validate_json(raw.data or b"")


def summary(sequence: int, letter: DeadLetter) -> str:
    original = f"{letter.original_stream or '-'}:{letter.original_sequence or '-'}"
    return (
        f"{sequence:>8}  {letter.dead_at:%Y-%m-%d %H:%M:%S}  {letter.service}/{letter.consumer}"
        f"  {letter.reason}  {original}  {letter.original_subject}  {letter.error[:100]}"
    )


def detail(sequence: int, letter: DeadLetter) -> dict[str, Any]:
    shown: dict[str, Any] = letter.model_dump(mode="json", exclude={"original_data_b64"})
    data = letter.original_data()
    try:
        shown["original"] = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        shown["original_base64"] = base64.b64encode(data).decode()
    return {"sequence": sequence, **shown}


async def run(args: Any, url: str) -> int:
    nc = await nats.connect(**NatsSeeds.parse(url).connect_options(), name="civicgrid-dlq")
    js = nc.jetstream()
    try:
        if args.dlq_command == "list":
            count = 0
            async for sequence, letter in letters(js, args.service):
                print(summary(sequence, letter))
                count += 1
            print(f"{count} dead letter(s)")
        elif args.dlq_command == "show":
            print(json.dumps(detail(args.sequence, await letter_at(js, args.sequence)), indent=2))
        else:
            await replay(js, args)
    finally:
        await nc.drain()
    return 0


async def replay(js: JetStreamContext, args: Any) -> None:
    if args.all == (args.sequence is not None):
        raise SystemExit("replay takes a DLQ sequence or --all, not both")
    if args.sequence is not None:
        chosen = [(args.sequence, await letter_at(js, args.sequence))]
    else:
        chosen = [each async for each in letters(js, args.service)]
    requested = 0
    for sequence, letter in chosen:
        twin = twin_of(letter)
        if not await _exists(js, twin):
            # A request nobody reads would sit in the DLQ until it expires, looking done.
            problem = (
                f"{sequence}: not replayed: {letter.service} has no consumer {twin}"
                f" (is {letter.consumer} still running, and has the service started since?)"
            )
            if args.sequence is not None:
                raise SystemExit(problem)
            print(problem)
            continue
        ack = await request_replay(js, letter, sequence)
        requested += 1
        print(
            f"{sequence}: replay requested from {letter.service}/{letter.consumer}"
            f" (request {ack.seq})"
        )
    print(f"{requested} replay(s) requested")


def twin_of(letter: DeadLetter) -> str:
    """The consumer that takes the replay: the writer's twin, or the twin itself."""
    return letter.consumer if letter.consumer.endswith(SUFFIX) else f"{letter.consumer}{SUFFIX}"


async def _exists(js: JetStreamContext, durable: str) -> bool:
    try:
        await js.consumer_info(streams.DLQ, durable)
    except NotFoundError:
        return False
    return True


def main(args: Any, url: str) -> int:
    return asyncio.run(run(args, url))
