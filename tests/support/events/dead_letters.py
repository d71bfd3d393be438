"""What a service has dead-lettered so far (an ordered read of its DLQ subject)."""

from __future__ import annotations

from nats.js import JetStreamContext

from civicgrid.events import streams
from civicgrid.events.dead_letters import DeadLetter


async def dead_letters_for(js: JetStreamContext, service: str) -> list[DeadLetter]:
    sub = await js.subscribe(f"dlq.{service}", stream=streams.DLQ, ordered_consumer=True)
    letters: list[DeadLetter] = []
    try:
        while True:
            msg = await sub.next_msg(timeout=0.3)
            letters.append(DeadLetter.model_validate_json(msg.data))
    except TimeoutError:
        return letters
    finally:
        await sub.unsubscribe()
