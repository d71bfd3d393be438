"""NATS URLs as NATS tools take them: one, or a comma-separated list of a cluster's seeds."""

from __future__ import annotations

import pytest

from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from civicgrid.servicekit.seeds import NatsSeeds, SeedsError
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings, SettingsError
from tests.support.events.waiting import eventually


def test_a_comma_separated_list_gives_every_seed_and_the_credentials_apart() -> None:
    seeds = NatsSeeds.parse("nats://routing:s3cret@10.0.0.1:4222, 10.0.0.2:4223,nats://h3")
    assert seeds.servers == ("nats://10.0.0.1:4222", "nats://10.0.0.2:4223", "nats://h3")
    assert (seeds.user, seeds.password) == ("routing", "s3cret")
    assert seeds.connect_options() == {
        "servers": ["nats://10.0.0.1:4222", "nats://10.0.0.2:4223", "nats://h3"],
        "user": "routing",
        "password": "s3cret",
    }
    assert "s3cret" not in seeds.shown()


def test_one_url_is_a_list_of_one() -> None:
    assert NatsSeeds.parse("nats://127.0.0.1:4222").connect_options() == {
        "servers": ["nats://127.0.0.1:4222"]
    }


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (" , ", "no NATS URL"),
        ("http://a:1", "not a NATS URL"),
        ("nats://a:notaport", "not a NATS URL"),
        ("nats://u:p@a:1,nats://v:q@b:2", "different credentials"),
    ],
)
def test_a_bad_list_is_refused_saying_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(SeedsError, match=says):
        NatsSeeds.parse(text)


def test_a_bad_list_in_the_environment_stops_a_service_before_it_starts() -> None:
    with pytest.raises(SettingsError, match="CIVICGRID_NATS_URL"):
        ServiceSettings.from_env("routing", env={"CIVICGRID_NATS_URL": "http://x:1"})


async def test_a_service_given_a_dead_seed_and_a_live_one_becomes_ready(
    nats_server: EmbeddedNats,
) -> None:
    dead = f"nats://127.0.0.1:{free_port()}"
    settings = ServiceSettings.from_env(
        "routing",
        env={
            "CIVICGRID_NATS_URL": f"{dead},{nats_server.client_url}",
            "CIVICGRID_ROUTING_PORT": "1",
        },
    )
    service = Service(settings, title="seeds")
    await service.start()
    try:

        async def ready() -> bool:
            return await service.problems() == []

        await eventually(ready, within_s=20, what="ready through the live seed")
        assert service.broker.connection.connected_url.port == nats_server.port
    finally:
        await service.stop()
