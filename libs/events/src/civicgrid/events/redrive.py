"""Replaying a dead letter: the consumer that gave up on a message gets it again.

A work consumer's original is still in its stream (INCIDENTS keeps every event), so publishing
it there again would store a second event (or be refused by the concurrency check it carries).
And a durable cannot be asked to redeliver one message it has finished with. So a replay is a
request, ``dlq.redrive.<service>.<durable>`` in the DLQ stream, whose body is the dead letter.
Every work consumer has a twin, ``<durable>-redrive``, reading its requests: it decodes the
letter's original with the consumer's own decoder and calls the consumer's own handler, with
the same retries and dead letters (a replay that fails again becomes a letter of the twin).
Handlers are idempotent, so a replay of something already handled does nothing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import DeliverPolicy, PubAck

from civicgrid.events import durables, streams, subjects
from civicgrid.events.consumer import ConsumerSpec, Decoded, Decoder, Original
from civicgrid.events.dead_letters import DeadLetter

SUFFIX = durables.REDRIVE_SUFFIX
REPLAY_OF = "civicgrid-replay-of"  # the DLQ sequence of the letter a request replays


def redrive_spec(spec: ConsumerSpec) -> ConsumerSpec:
    """The twin consumer that takes replay requests for ``spec``'s durable."""
    return dataclasses.replace(
        spec,
        durable=f"{spec.durable}{SUFFIX}",
        stream=streams.DLQ,
        filter_subjects=(subjects.dlq_redrive(spec.service, spec.durable),),
        # A request published while the twin did not exist yet is still taken.
        deliver_policy=DeliverPolicy.ALL,
        decode=_letter_decoder(spec.decode),
    )


def _letter_decoder(decode: Decoder) -> Decoder:
    def decode_letter(msg: Msg) -> Decoded:
        letter = DeadLetter.model_validate_json(msg.data)  # ValidationError: unreadable
        decoded = decode(_original(letter))
        # The handler sees the original's subject, sequence and headers, as the first time.
        original = Original(
            letter.original_subject, letter.original_sequence or 0, letter.original_headers
        )
        return dataclasses.replace(decoded, original=original)

    return decode_letter


def _original(letter: DeadLetter) -> Msg:
    # Only what a decoder reads: the subject, the bytes and the headers, as first delivered.
    original: Any = Msg(
        _client=None,  # type: ignore[arg-type]
        subject=letter.original_subject,
        data=letter.original_data(),
        headers=dict(letter.original_headers) or None,
    )
    return original  # type: ignore[no-any-return]


async def request_replay(js: JetStreamContext, letter: DeadLetter, dlq_sequence: int) -> PubAck:
    """Ask the consumer that wrote ``letter`` to handle its original again.

    A letter of a twin (its original is itself a replay request) is replayed by publishing that
    request again.
    """
    if letter.consumer.endswith(SUFFIX) and letter.original_subject.startswith(
        f"{subjects.DLQ_PREFIX}.redrive."
    ):
        return await js.publish(
            letter.original_subject,
            letter.original_data(),
            stream=streams.DLQ,
            headers={REPLAY_OF: str(dlq_sequence)},
        )
    return await js.publish(
        subjects.dlq_redrive(letter.service, letter.consumer),
        letter.model_dump_json().encode(),
        stream=streams.DLQ,
        headers={REPLAY_OF: str(dlq_sequence)},
    )
