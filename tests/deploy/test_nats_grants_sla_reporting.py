"""sla and reporting under deploy/k8s/base/nats/authorization.conf, on a real nats-server.

The file the cluster runs (not the grants in code it is copied from) is loaded into a
nats-server; each user connects with its password and tries what it needs, which must work,
and what it must not do, which the server must refuse ("Permissions Violation"). Refusals are
seen in order: the server answers a refused publish or subscription with -ERR before the PONG
of the flush that follows it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig

from civicgrid.events import durables, streams, subjects
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port

REPO = Path(__file__).resolve().parents[2]
AUTHORIZATION_CONF = REPO / "deploy" / "k8s" / "base" / "nats" / "authorization.conf"
USERS = ("admin", "intake", "routing", "sla", "reporting", "external")


def password(user: str) -> str:
    return f"{user}-test-password"


def deployed_authorization() -> str:
    """The deployed file with its $<USER>_PASSWORD variables filled in (the pod's env does it)."""
    text = AUTHORIZATION_CONF.read_text()
    for user in USERS:
        text = text.replace(f"${user.upper()}_PASSWORD", f'"{password(user)}"')
    assert not re.search(r"\$[A-Z]+_PASSWORD", text), "a user without a password here"
    return text


@pytest.fixture(scope="module")
def deployed_nats(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    data_dir: Path = tmp_path_factory.mktemp("deployed-nats")
    server = EmbeddedNats(data_dir=data_dir, port=free_port(), config_text=deployed_authorization())
    server.start(log_file=data_dir / "nats-server.log", die_with_parent=True)
    yield server
    server.stop()


@dataclass
class Session:
    client: NatsClient
    violations: list[str] = field(default_factory=list)

    async def refused(self, subject: str, *, subscribe: bool = False) -> bool:
        """Try one publish (or subscription) and tell whether the server refused it."""
        before = len(self.violations)
        if subscribe:
            subscription = await self.client.subscribe(subject)
        else:
            await self.client.publish(subject, b"{}")
        await self.client.flush(timeout=5)
        await self.client.flush(timeout=5)
        if subscribe:
            await subscription.unsubscribe()
        # nats-py lower-cases the server's message, subject included.
        return any(f'"{subject.lower()}"' in v.lower() for v in self.violations[before:])


async def connect(server: EmbeddedNats, user: str) -> Session:
    session = Session(client=NatsClient())

    async def on_error(exc: Exception) -> None:
        session.violations.append(str(exc))

    await session.client.connect(
        f"nats://{user}:{password(user)}@{server.host}:{server.port}",
        error_cb=on_error,
        allow_reconnect=False,
    )
    return session


@pytest_asyncio.fixture(scope="module")
async def provisioned(deployed_nats: EmbeddedNats) -> AsyncIterator[None]:
    admin = await connect(deployed_nats, "admin")
    await ensure_streams(admin.client.jetstream())
    await admin.client.jetstream().publish("incident.GRANTS1.reported", b"{}")
    yield
    await admin.client.drain()


@pytest_asyncio.fixture
async def sla(deployed_nats: EmbeddedNats, provisioned: None) -> AsyncIterator[Session]:
    session = await connect(deployed_nats, "sla")
    yield session
    await session.client.close()


@pytest_asyncio.fixture
async def reporting(deployed_nats: EmbeddedNats, provisioned: None) -> AsyncIterator[Session]:
    session = await connect(deployed_nats, "reporting")
    yield session
    await session.client.close()


async def test_sla_arms_and_cancels_schedules_appends_its_events_and_notifies(
    sla: Session,
) -> None:
    js = sla.client.jetstream(timeout=5)
    # Its durables on both streams it consumes.
    for durable, filter_subject in (
        (durables.SLA_CLOCKS, "incident.>"),
        (durables.SLA_TIMERS, f"{subjects.SLA_FIRED_PREFIX}.>"),
    ):
        config = ConsumerConfig(
            durable_name=durable.name, ack_policy=AckPolicy.EXPLICIT, filter_subject=filter_subject
        )
        info = await js.add_consumer(durable.stream, config)
        assert info.name == durable.name
    # A schedule goes into the schedules stream; cancelling purges its subject.
    ack = await js.publish(f"{subjects.SLA_TIMER_PREFIX}.GRANTS1.resolve.due", b"{}")
    assert ack.stream == streams.SLA_TIMERS
    await js.purge_stream(streams.SLA_TIMERS, subject=f"{subjects.SLA_TIMER_PREFIX}.GRANTS1.>")
    assert not await sla.refused("incident.GRANTS1.sla_breached")
    assert not await sla.refused(f"{subjects.NOTIFY_PREFIX}.team.u1")
    assert not await sla.refused(subjects.dlq("sla"))
    assert sla.violations == []


@pytest.mark.parametrize(
    "subject",
    [
        # Firings are the server's to write; events of other services are theirs.
        f"{subjects.SLA_FIRED_PREFIX}.GRANTS1.resolve.due",
        "incident.GRANTS1.reported",
        "incident.GRANTS1.assigned",
        f"{subjects.INTAKE_REPORT_PREFIX}.web",
        subjects.dlq("routing"),
        # No stream administration, no purge of the event log, no other service's durable.
        f"$JS.API.STREAM.DELETE.{streams.SLA_TIMERS}",
        f"$JS.API.STREAM.UPDATE.{streams.SLA_TIMERS}",
        f"$JS.API.STREAM.PURGE.{streams.INCIDENTS}",
        f"$JS.API.STREAM.CREATE.{streams.SLA_TIMERS}",
        f"$JS.API.CONSUMER.DURABLE.CREATE.{streams.INCIDENTS}.{durables.ROUTING.name}",
        f"$JS.API.CONSUMER.DELETE.{streams.INCIDENTS}.{durables.INTAKE_MERGES.name}",
        f"$KV.{streams.ROUTING_POLICY_BUCKET}.policy",
    ],
)
async def test_sla_is_refused_what_is_not_its_own(sla: Session, subject: str) -> None:
    assert await sla.refused(subject)


async def test_reporting_reads_the_incident_events(reporting: Session) -> None:
    js = reporting.client.jetstream(timeout=5)
    info = await js.stream_info(streams.INCIDENTS)
    assert info.state.messages >= 1
    subscription = await js.subscribe("incident.>", ordered_consumer=True)
    message = await subscription.next_msg(timeout=5)
    assert message.subject.startswith("incident.")
    await subscription.unsubscribe()
    # An unreadable event goes to its dead letters.
    assert not await reporting.refused(subjects.dlq("reporting"))
    assert reporting.violations == []


@pytest.mark.parametrize(
    ("subject", "subscribe"),
    [
        # A read model writes nothing into the event log, schedules or notifications.
        ("incident.GRANTS1.reported", False),
        ("incident.GRANTS1.sla_breached", False),
        (f"{subjects.SLA_TIMER_PREFIX}.GRANTS1.resolve.due", False),
        (f"{subjects.NOTIFY_PREFIX}.team.u1", False),
        (subjects.dlq("sla"), False),
        # Nothing of the schedules stream, the DLQ or the buckets, no durable at all.
        (f"$JS.API.STREAM.INFO.{streams.SLA_TIMERS}", False),
        (f"$JS.API.STREAM.INFO.{streams.DLQ}", False),
        (f"$JS.API.STREAM.PURGE.{streams.INCIDENTS}", False),
        (f"$JS.API.CONSUMER.DURABLE.CREATE.{streams.INCIDENTS}.{durables.SLA_CLOCKS.name}", False),
        (f"$KV.{streams.SLA_POLICY_BUCKET}.policy", False),
        (f"{subjects.SLA_FIRED_PREFIX}.>", True),
        (f"{subjects.INTAKE_REPORT_PREFIX}.>", True),
    ],
)
async def test_reporting_is_refused_everything_but_reading(
    reporting: Session, subject: str, subscribe: bool
) -> None:
    assert await reporting.refused(subject, subscribe=subscribe)
