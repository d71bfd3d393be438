"""The NATS grants against a real nats-server: a durable belongs to the service that declares it.

Every user of ``civicgrid up`` is here with its grant. Another user's attempts on a durable
(delete, update, create over it, read its info, pull from it, ack its messages) are refused
and leave it as it was; its owner manages it freely; anyone may still read the incident events
with an ordered consumer or a pull ephemeral, flow control included.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo
from nats.js.errors import APIError

from civicgrid.events import durables, streams
from civicgrid.events.durables import Durable
from civicgrid.events.permissions import EXTERNAL_GRANT, SERVICE_GRANTS, Grant
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port
from tests.support.events import refusals
from tests.support.events.waiting import eventually

GRANTS: dict[str, Grant] = {**SERVICE_GRANTS, "external": EXTERNAL_GRANT}
REFUSED_WITHIN_S = 1.0
# Enough unacknowledged bytes in flight that the server asks an ordered consumer for a
# flow-control reply (it does so at about half of its pending-bytes limit).
FLOW_CONTROL_EVENTS = 3000
FLOW_CONTROL_BODY = b"x" * 1024
FILTERS = {
    streams.INCIDENTS: "incident.>",
    streams.SLA_TIMERS: "sla.fired.>",
    streams.DLQ: "dlq.>",
}


def password(user: str) -> str:
    return f"{user}-password"


def authorization() -> str:
    users: list[dict[str, object]] = [{"user": "admin", "password": password("admin")}]
    users += [
        {"user": user, "password": password(user), "permissions": grant.as_nats_permissions()}
        for user, grant in GRANTS.items()
    ]
    return "authorization {\n users: [\n" + ",\n".join(map(json.dumps, users)) + "\n ]\n}\n"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data_dir: Path = tmp_path_factory.mktemp("guarded-nats")
    server = EmbeddedNats(data_dir=data_dir, port=free_port(), config_text=authorization())
    server.start(log_file=data_dir / "nats-server.log", die_with_parent=True)
    yield server
    server.stop()


PUBLISHED: contextvars.ContextVar[list[str]] = contextvars.ContextVar("published")
"""The subjects one attempt has published to (each attempt runs in a task of its own)."""


class RecordingClient(NatsClient):
    async def publish(
        self,
        subject: str,
        payload: bytes = b"",
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        published = PUBLISHED.get(None)
        if published is not None:
            published.append(subject)
        await super().publish(subject, payload, reply=reply, headers=headers)


@dataclass
class Session:
    client: NatsClient
    violations: list[str] = field(default_factory=list)

    @property
    def js(self) -> JetStreamContext:
        return self.client.jetstream(timeout=REFUSED_WITHIN_S)


async def connect(server: EmbeddedNats, user: str) -> Session:
    session = Session(client=RecordingClient())

    async def on_error(exc: Exception) -> None:
        session.violations.append(str(exc))

    await session.client.connect(
        f"nats://{user}:{password(user)}@{server.host}:{server.port}",
        error_cb=on_error,
        allow_reconnect=False,
    )
    return session


@pytest_asyncio.fixture(scope="module")
async def admin(guarded: EmbeddedNats) -> AsyncIterator[Session]:
    session = await connect(guarded, "admin")
    await ensure_streams(session.client.jetstream())
    js = session.client.jetstream()
    for number in range(3):
        await js.publish(f"incident.PERMS{number}.reported", b"{}", stream=streams.INCIDENTS)
        await js.publish(f"sla.fired.PERMS{number}.c.due", b"{}", stream=streams.SLA_TIMERS)
        await js.publish(f"dlq.PERMS{number}", b"{}", stream=streams.DLQ)
    yield session
    await session.client.drain()


@pytest_asyncio.fixture
async def sessions(guarded: EmbeddedNats) -> AsyncIterator[dict[str, Session]]:
    opened = {user: await connect(guarded, user) for user in GRANTS}
    yield opened
    for session in opened.values():
        await session.client.close()


def durable_config(durable: Durable, *, max_deliver: int = 5) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=durable.name,
        ack_policy=AckPolicy.EXPLICIT,
        max_deliver=max_deliver,
        ack_wait=30,
        filter_subject=FILTERS[durable.stream],
    )


async def fresh_durable(admin: Session, durable: Durable) -> ConsumerInfo:
    js = admin.client.jetstream()
    with contextlib.suppress(APIError):  # not there yet
        await js.delete_consumer(durable.stream, durable.name)
    return await js.add_consumer(durable.stream, durable_config(durable))


def snapshot(info: ConsumerInfo) -> tuple[object, ...]:
    config = info.config
    return (
        info.created,
        config.max_deliver,
        config.filter_subject,
        config.ack_wait,
        info.delivered.stream_seq if info.delivered else None,
        info.num_ack_pending,
    )


ANSWERS = (NatsTimeoutError, TimeoutError, APIError, NatsError)


async def refused(session: Session, attempt: Coroutine[object, object, object]) -> bool:
    """Whether the attempt got an error, or no answer within REFUSED_WITHIN_S (settled as soon
    as the server reports the violation for a subject the attempt published to)."""
    published: list[str] = []
    PUBLISHED.set(published)  # the attempt's task copies this context: it records `published`
    return await refusals.refused(attempt, lambda: published, session.violations, answers=ANSWERS)


def legacy_create(durable: Durable, config: dict[str, object]) -> bytes:
    body = {"stream_name": durable.stream, "config": config}
    return json.dumps(body).encode()


async def raw_request(session: Session, subject: str, payload: bytes) -> Msg:
    reply = await session.client.request(subject, payload, timeout=REFUSED_WITHIN_S)
    answer = json.loads(reply.data or b"{}")
    if isinstance(answer, dict) and "error" in answer:
        raise APIError.from_error(answer["error"])
    if reply.headers and reply.headers.get("Status"):
        # A pull's "no messages" or "request timeout": nothing was delivered.
        raise NatsTimeoutError
    return reply


def others_and_durables() -> list[tuple[str, Durable]]:
    return [
        (user, durable)
        for durable in durables.all_durables()
        for user in GRANTS
        if user != durables.owner_of(durable)
    ]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("user", "durable"),
    others_and_durables(),
    ids=[f"{user}-on-{durable.name}" for user, durable in others_and_durables()],
)
async def test_no_user_can_touch_a_durable_another_service_owns(
    admin: Session, sessions: dict[str, Session], user: str, durable: Durable
) -> None:
    before = await fresh_durable(admin, durable)
    session = sessions[user]
    js = session.js
    stream, name = durable.stream, durable.name
    next_request = json.dumps({"batch": 1, "expires": 200_000_000}).encode()
    attempts = {
        "delete": js.delete_consumer(stream, name),
        "info": js.consumer_info(stream, name, timeout=REFUSED_WITHIN_S),
        "update by name": js.add_consumer(
            stream, durable_config(durable, max_deliver=1).evolve(name=name)
        ),
        "create as durable": js.add_consumer(stream, durable_config(durable, max_deliver=1)),
        "ephemeral create naming it a durable": raw_request(
            session,
            f"$JS.API.CONSUMER.CREATE.{stream}",
            legacy_create(durable, {"durable_name": name, "ack_policy": "none"}),
        ),
        "ephemeral create naming it": raw_request(
            session,
            f"$JS.API.CONSUMER.CREATE.{stream}",
            legacy_create(durable, {"name": name, "ack_policy": "none"}),
        ),
        "pull": raw_request(session, f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{name}", next_request),
    }
    outcomes = dict(
        zip(
            attempts,
            await asyncio.gather(*(refused(session, a) for a in attempts.values())),
            strict=True,
        )
    )
    allowed = [attempt for attempt, was_refused in outcomes.items() if not was_refused]
    assert not allowed, f"{user} was allowed: {allowed}"
    after = await admin.client.jetstream().consumer_info(stream, name)
    assert snapshot(after) == snapshot(before), "the durable changed or lost a message"
    assert await _violation_about(session, name), session.violations


@pytest.mark.timeout(30)
async def test_another_user_cannot_ack_or_terminate_a_durables_messages(
    admin: Session, sessions: dict[str, Session]
) -> None:
    await fresh_durable(admin, durables.ROUTING)
    owner = sessions["routing"].client.jetstream()
    pulled = await owner.pull_subscribe_bind(durables.ROUTING.name, stream=streams.INCIDENTS)
    [msg] = await pulled.fetch(1, timeout=5)
    assert msg.reply.startswith(f"$JS.ACK.{streams.INCIDENTS}.{durables.ROUTING.name}.")
    external = sessions["external"]
    await external.client.publish(msg.reply, b"+TERM")
    await external.client.flush()
    await eventually(lambda: _violation_about(external, msg.reply), what="the refused ack reported")
    info = await admin.client.jetstream().consumer_info(streams.INCIDENTS, durables.ROUTING.name)
    assert info.num_ack_pending == 1, "another user settled routing's message"
    await msg.ack_sync()
    info = await admin.client.jetstream().consumer_info(streams.INCIDENTS, durables.ROUTING.name)
    assert info.num_ack_pending == 0


async def _violation_about(session: Session, subject: str) -> bool:
    # nats-py lower-cases the server's error text.
    return any(subject.lower() in violation.lower() for violation in session.violations)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("durable", durables.all_durables(), ids=lambda d: d.name)
async def test_a_service_manages_its_own_durables(
    admin: Session, sessions: dict[str, Session], durable: Durable
) -> None:
    owner = sessions[durables.owner_of(durable)]
    js = owner.client.jetstream()
    stream, name = durable.stream, durable.name
    with contextlib.suppress(APIError):  # not there yet
        await admin.client.jetstream().delete_consumer(stream, name)
    created = await js.add_consumer(stream, durable_config(durable))
    assert created.config.max_deliver == 5
    # Updated in place by name, the way a service reconciles its consumer's config.
    changed = durable_config(durable, max_deliver=7).evolve(name=name)
    updated = await js.add_consumer(stream, changed)
    assert updated.config.max_deliver == 7
    assert (await js.consumer_info(stream, name)).config.max_deliver == 7
    pulled = await js.pull_subscribe_bind(name, stream=stream)
    [msg] = await pulled.fetch(1, timeout=5)
    await msg.ack_sync()
    await pulled.unsubscribe()
    assert await js.delete_consumer(stream, name)
    # And recreated, as a service does when its consumer went missing.
    await js.add_consumer(stream, durable_config(durable))
    assert owner.violations == []


async def _fill_incidents(admin: Session, count: int) -> int:
    js = admin.client.jetstream()
    acks = await asyncio.gather(
        *(
            js.publish(f"incident.FLOW{number}.reported", FLOW_CONTROL_BODY)
            for number in range(count)
        )
    )
    return max(ack.seq for ack in acks)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("user", list(GRANTS))
async def test_anyone_reads_the_incident_events_with_an_ordered_consumer(
    admin: Session, sessions: dict[str, Session], user: str
) -> None:
    last = await _fill_incidents(admin, FLOW_CONTROL_EVENTS)
    session = sessions[user]
    seen: list[int] = []

    async def on_message(msg: Msg) -> None:
        seen.append(msg.metadata.sequence.stream)

    # No stream named: the client looks it up by subject, as a newcomer's code would.
    subscription = await session.client.jetstream().subscribe(
        "incident.>", cb=on_message, ordered_consumer=True, idle_heartbeat=1.0
    )
    try:

        async def read_to_the_end() -> bool:
            return bool(seen) and seen[-1] >= last

        await eventually(read_to_the_end, within_s=30, what=f"{user} read to sequence {last}")
    finally:
        await subscription.unsubscribe()
    assert seen == sorted(seen)
    assert session.violations == []


@pytest.mark.timeout(30)
async def test_an_external_system_reads_with_a_pull_ephemeral(
    admin: Session, sessions: dict[str, Session]
) -> None:
    await _fill_incidents(admin, 10)
    session = sessions["external"]
    js = session.client.jetstream()
    pulled = await js.pull_subscribe("incident.>", stream=streams.INCIDENTS)
    messages = await pulled.fetch(10, timeout=5)
    assert len(messages) == 10
    for msg in messages:
        await msg.ack_sync()
    info = await pulled.consumer_info()
    assert info.num_ack_pending == 0
    await pulled.unsubscribe()
    assert await js.delete_consumer(streams.INCIDENTS, info.name)
    assert session.violations == []
