"""A service's work consumers against a real nats-server: readiness while a durable is missing."""

from __future__ import annotations

import json
import math

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from civicgrid.events.consumer import ConsumerSpec, Decoded, Delivery
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings
from tests.support.events.waiting import eventually

STREAM = "WATCHED"


def decode_number(msg: Msg) -> Decoded:
    return Decoded(key="all", value=int(json.loads(msg.data)))


async def test_a_deleted_durable_makes_the_service_unready_until_it_is_recreated(
    nats_server: EmbeddedNats, nc: NatsClient
) -> None:
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=STREAM, subjects=["watched.>"]))
    # Another consumer on the stream, so a limit of one consumer can block the recreation.
    await js.add_consumer(STREAM, ConsumerConfig(durable_name="other", ack_policy=AckPolicy.NONE))
    seen: list[int] = []

    async def record(number: int, delivery: Delivery) -> None:
        seen.append(number)

    settings = ServiceSettings(
        service="watched",
        nats_url=nats_server.client_url,
        http_host="127.0.0.1",
        http_port=0,
        config_dir=None,
        log_level="WARNING",
        instance="watched-1",
        stream_replicas=1,
    )
    service = Service(settings, title="watched")
    spec = ConsumerSpec(
        service="watched",
        durable="watched-c",
        stream=STREAM,
        filter_subjects=("watched.>",),
        decode=decode_number,
    )
    service.consume(spec, record)
    await service.start()
    try:
        await js.publish("watched.n", b"1", stream=STREAM)
        await eventually(lambda: _async(seen == [1]), what="first message handled")
        assert await service.problems() == []

        stream = (await js.stream_info(STREAM)).config
        await js.update_stream(stream.evolve(max_consumers=1))
        await js.delete_consumer(STREAM, spec.durable)
        await js.publish("watched.n", b"2", stream=STREAM)
        problems = await eventually(service.problems, what="the missing durable reported")
        assert problems == ["consumer watched-c missing on the server"]

        await js.update_stream(stream.evolve(max_consumers=-1))
        await eventually(lambda: _no_problems(service), what="ready again")
        await js.publish("watched.n", b"3", stream=STREAM)
        # At least once: the new durable resumes after the last ack floor the service sampled.
        await eventually(lambda: _async({2, 3} <= set(seen)), what="messages after handled")
        recreated = (await js.consumer_info(STREAM, spec.durable)).config
        assert recreated.max_deliver == spec.consumer_config().max_deliver
        # The lag series goes on under the same labels, from the recreated durable's samples.
        labels = {"service": "watched", "consumer": spec.durable}
        lag = service.registry.get_sample_value("civicgrid_consumer_pending", labels)
        assert lag is not None and not math.isnan(lag)  # sampled since the recreation
    finally:
        await service.stop()
        await js.delete_stream(STREAM)


async def _no_problems(service: Service) -> bool:
    return await service.problems() == []


async def _async(value: bool) -> bool:
    return value
