"""``civicgrid up`` as a user runs it: a real process tree, real ports, Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import nats
import pytest
from nats.errors import Error as NatsError

from civicgrid.cli.up import INSTANCE_PORT_STEP
from civicgrid.events.store import EventStore
from civicgrid.servicekit.natsserver import EmbeddedNats, claim_port, free_port
from tests.support.events.factories import reported
from tests.support.events.refusals import refused
from tests.support.events.waiting import eventually

SERVICES = ("intake", "routing", "sla", "reporting")
START_DEADLINE_S = 90.0
# "Ctrl-C stops everything within a few seconds, at any moment."
STOP_WITHIN_S = 10.0


@dataclass
class RunningUp:
    process: subprocess.Popen[str]
    ports: dict[str, int]
    nats_port: int
    data_dir: Path
    output: list[str]

    def wait_for_line(self, text: str, deadline_s: float) -> None:
        deadline = time.monotonic() + deadline_s
        assert self.process.stdout is not None
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                if self.process.poll() is not None:
                    break
                continue
            self.output.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not printed within {deadline_s}s: {''.join(self.output)}")

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        remaining, _ = self.process.communicate(timeout=60)
        self.output.append(remaining)
        return self.process.returncode


def _free_port_with_a_second_instance() -> int:
    """A free port whose +100 (where ``up --instances 2`` puts instance 2) is free too."""
    while True:
        port = free_port()
        if claim_port(port + INSTANCE_PORT_STEP):
            return port


def start_up(
    data_dir: Path,
    nats_port: int | None = None,
    nats_url: str | None = None,
    instances: int = 1,
) -> RunningUp:
    ports = {service: _free_port_with_a_second_instance() for service in SERVICES}
    nats_port = nats_port or free_port()
    env = {
        **os.environ,
        "CIVICGRID_DATA_DIR": str(data_dir),
        "CIVICGRID_NATS_PORT": str(nats_port),
        "CIVICGRID_INSTANCES": str(instances),
        **{f"CIVICGRID_{s.upper()}_PORT": str(p) for s, p in ports.items()},
    }
    env.pop("CIVICGRID_NATS_URL", None)
    if nats_url is not None:
        env["CIVICGRID_NATS_URL"] = nats_url
    process = subprocess.Popen(
        [sys.executable, "-m", "civicgrid.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return RunningUp(process, ports, nats_port, data_dir, [])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _stop_as_a_user_would(running: RunningUp) -> None:
    if running.process.poll() is None:
        # A test that did not stop it: stop it as a user would, so nothing outlives the test.
        running.process.send_signal(signal.SIGINT)
        try:
            running.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            running.process.kill()
            running.process.wait()


@pytest.fixture
def up(data_dir: Path) -> Iterator[RunningUp]:
    running = start_up(data_dir)
    yield running
    _stop_as_a_user_would(running)


@pytest.fixture(scope="module")
def shared_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningUp]:
    """One started platform for the tests that only use it (report, read, publish a policy
    version with the same rules) and neither stop, kill nor restart any part of it: a start
    costs 10-30 s on a busy machine. The clean stop each of them ended with is asserted once,
    after the last of them, on the platform they all used."""
    running = start_up(tmp_path_factory.mktemp("shared-up") / "data")
    try:
        running.wait_for_line("civicgrid is up", START_DEADLINE_S)
        yield running
        assert running.stop() == 0, "".join(running.output)
    finally:
        _stop_as_a_user_would(running)


def _until(probe: Callable[[], bool], within_s: float, what: str) -> None:
    """The synchronous twin of ``eventually``: poll until true, fail loudly at the deadline."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {within_s}s")


def _children_of(pid: int) -> list[int]:
    result = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    )
    return [int(p) for p in result.stdout.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_answers_readyz_on_all_four_ports_and_stops_cleanly(up: RunningUp) -> None:
    up.wait_for_line("civicgrid is up", START_DEADLINE_S)
    children = _children_of(up.process.pid)
    assert len(children) == 5, "nats-server and four services"
    for service, port in up.ports.items():
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert response.status_code == 200, (service, response.text)
        assert response.json() == {"ready": True, "service": service, "problems": []}
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "civicgrid_consumer_pending" in metrics
    assert up.stop() == 0
    text = "".join(up.output)
    assert "services stopped" in text and "nats-server stopped" in text
    assert not [pid for pid in children if _alive(pid)]


def test_a_service_that_dies_is_restarted(up: RunningUp) -> None:
    up.wait_for_line("civicgrid is up", START_DEADLINE_S)
    before = {
        int(p)
        for p in subprocess.run(
            ["pgrep", "-f", "civicgrid.sla"], capture_output=True, text=True, check=False
        ).stdout.split()
    }
    victims = [pid for pid in _children_of(up.process.pid) if pid in before]
    assert len(victims) == 1
    os.kill(victims[0], signal.SIGKILL)
    up.wait_for_line("sla exited with code -9", 30)

    def sla_ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{up.ports['sla']}/readyz", timeout=2).is_success
        except httpx.HTTPError:
            return False

    _until(sla_ready, START_DEADLINE_S, "the restarted sla ready")
    assert up.stop() == 0


def test_ctrl_c_after_the_reader_of_its_output_went_away_still_stops_everything(
    up: RunningUp,
) -> None:
    """`civicgrid up | head`: once its output has nowhere to go, Ctrl-C still stops it all."""
    up.wait_for_line("civicgrid is up", START_DEADLINE_S)
    children = _children_of(up.process.pid)
    assert up.process.stdout is not None
    up.process.stdout.close()
    up.process.send_signal(signal.SIGINT)
    try:
        up.process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        _stop_up_or_kill(up)
        pytest.fail(f"civicgrid up still running {STOP_WITHIN_S}s after Ctrl-C")
    assert not [pid for pid in children if _running(pid)], "nats-server or a service left"


async def _history(url: str, incident_id: str) -> list[str]:
    client = await nats.connect(url)
    try:
        history = await EventStore(client.jetstream()).load(incident_id)
        return [event.event_id for event in history]
    finally:
        await client.close()


async def test_a_second_up_on_the_same_data_dir_resumes(data_dir: Path) -> None:
    first = start_up(data_dir)
    probe = reported()
    try:
        first.wait_for_line("civicgrid is up", START_DEADLINE_S)
        credentials = json.loads((data_dir / "credentials.json").read_text())
        admin = f"nats://admin:{credentials['passwords']['admin']}@127.0.0.1:{first.nats_port}"
        client = await nats.connect(admin)
        await EventStore(client.jetstream()).append(
            probe, msg_id="resume-probe", expected_version=0
        )
        await client.close()
        # Routing assigns the probe; wait for it so the comparison below is of a settled history.
        before = await eventually(
            lambda: _settled(admin, probe.incident_id),
            within_s=30,
            what="probe assigned and its clocks started",
        )
    finally:
        assert first.stop() == 0

    second = start_up(data_dir, nats_port=first.nats_port)
    try:
        second.wait_for_line("civicgrid is up", START_DEADLINE_S)
        again = json.loads((data_dir / "credentials.json").read_text())
        assert again == credentials
        after = await _history(admin, probe.incident_id)
        # Same events, and a restarted routing did not assign the probe a second time.
        assert after[: len(before)] == before
        assert after[0] == probe.event_id
        assert len(after) == len(before)
    finally:
        assert second.stop() == 0


async def _settled(url: str, incident_id: str) -> list[str] | None:
    """The history once routing assigned it and sla started its clocks (one atomic decision):
    nothing more is written until the first deadline, half an hour away."""
    client = await nats.connect(url)
    try:
        history = list(await EventStore(client.jetstream()).load(incident_id))
    finally:
        await client.close()
    types = {event.event_type for event in history}
    settled = {"assigned", "sla_clock_started"} <= types
    return [event.event_id for event in history] if settled else None


async def test_embedded_nats_refuses_anonymous_and_limits_each_user(shared_up: RunningUp) -> None:
    up = shared_up
    credentials = json.loads((up.data_dir / "credentials.json").read_text())["passwords"]
    base = f"127.0.0.1:{up.nats_port}"
    with pytest.raises(NatsError):
        await nats.connect(f"nats://{base}", max_reconnect_attempts=0, allow_reconnect=False)

    violations: list[str] = []

    async def on_error(exc: Exception) -> None:
        violations.append(str(exc).lower())

    external = await nats.connect(
        f"nats://external:{credentials['external']}@{base}", error_cb=on_error
    )
    js = external.jetstream()
    # Publishing an event straight into the store is refused: externals go through intake.
    subject = "incident.FORGED.resolved"
    assert await refused(js.publish(subject, b"{}", timeout=2), lambda: [subject], violations)
    # Reading the event stream is allowed.
    assert (await js.stream_info("INCIDENTS")).config.name == "INCIDENTS"
    # Routing's durable is routing's alone (the embedded users carry the deny lists too).
    subject = "$JS.API.CONSUMER.DELETE.INCIDENTS.routing"
    deleting = external.jetstream(timeout=2).delete_consumer("INCIDENTS", "routing")
    assert await refused(deleting, lambda: [subject], violations)
    await external.close()
    admin = await nats.connect(f"nats://admin:{credentials['admin']}@{base}")
    assert (await admin.jetstream().consumer_info("INCIDENTS", "routing")).name == "routing"
    await admin.close()

    reporting = await nats.connect(
        f"nats://reporting:{credentials['reporting']}@{base}", error_cb=on_error
    )
    subject = "incident.FORGED.assigned"
    forging = reporting.jetstream().publish(subject, b"{}", timeout=2)
    assert await refused(forging, lambda: [subject], violations)
    await reporting.close()


async def test_a_report_travels_from_open311_and_nats_to_routing_and_back(
    shared_up: RunningUp,
) -> None:
    """The whole platform as processes: intake takes it, routing assigns it, intake shows it."""
    up = shared_up
    secrets = json.loads((up.data_dir / "credentials.json").read_text())
    intake = f"http://127.0.0.1:{up.ports['intake']}"
    key = secrets["dev_api_key"]
    async with httpx.AsyncClient(base_url=intake, timeout=5) as http:
        created = await http.post(
            "/open311/v2/requests.json",
            data={
                "api_key": key,
                "service_code": "city-appearance.illegal-parking",
                "lat": "27.5516",
                "long": "120.5548",
                "description": "违停堵门",
                "first_name": "张",
                "last_name": "三",
                "phone": "13800000000",
            },
        )
        assert created.status_code == 201, created.text
        request_id = created.json()[0]["service_request_id"]

        async def assigned_agency() -> str | None:
            shown = (await http.get(f"/open311/v2/requests/{request_id}.json")).json()[0]
            return shown["agency_responsible"]

        first_agency = await eventually(assigned_agency, within_s=20, what="routing assigned")
        incident = (
            await http.get(f"/api/v1/incidents/{request_id}", headers={"X-API-Key": key})
        ).json()
        lead = incident["state"]["lead_unit"]
        returned = await http.post(
            f"/api/v1/incidents/{request_id}/return",
            headers={"X-API-Key": key},
            json={"unit": {"kind": lead["kind"], "id": lead["id"]}, "reason_code": "not_our_duty"},
        )
        assert returned.status_code == 200, returned.text

        async def reassigned_agency() -> str | None:
            agency = await assigned_agency()
            return agency if agency != first_agency else None

        await eventually(reassigned_agency, within_s=20, what="routing re-routed the return")

    # Another system reports over NATS as the `external` user, which may publish only intake.>.
    external = await nats.connect(
        f"nats://external:{secrets['passwords']['external']}@127.0.0.1:{up.nats_port}"
    )
    try:
        reply = await external.request(
            "intake.report.iot_sensor",
            json.dumps(
                {
                    "category": "water.waterlogging",
                    "location": {"lon": 120.5548, "lat": 27.5516},
                    "device_id": "WL-0042",
                    "reading": 0.42,
                }
            ).encode(),
            headers={"X-API-Key": key},
            timeout=10,
        )
    finally:
        await external.close()
    answer = json.loads(reply.data)
    assert answer["ok"] is True, answer
    assert answer["incident_id"]
    logs = "".join(path.read_text() for path in (up.data_dir / "logs").glob("*.log"))
    assert "13800000000" not in logs


async def test_an_assigned_report_gets_its_clocks_and_open311_its_expected_datetime(
    shared_up: RunningUp,
) -> None:
    """sla as a process: accept 30 min and resolve 24 h after the assignment, shown by Open311."""
    up = shared_up
    secrets = json.loads((up.data_dir / "credentials.json").read_text())
    key = secrets["dev_api_key"]
    intake = f"http://127.0.0.1:{up.ports['intake']}"
    sla = f"http://127.0.0.1:{up.ports['sla']}"
    async with httpx.AsyncClient(base_url=intake, timeout=5) as http:
        created = await http.post(
            "/open311/v2/requests.json",
            data={
                "api_key": key,
                "service_code": "city-appearance.illegal-parking",
                # 400 m east of the report the travelling test sends on the same platform: its own
                # incident, not a duplicate merged into that one.
                "lat": "27.5516",
                "long": "120.5588",
                "description": "违停堵门",
            },
        )
        assert created.status_code == 201, created.text
        request_id = created.json()[0]["service_request_id"]

        async def expected() -> str | None:
            shown = (await http.get(f"/open311/v2/requests/{request_id}.json")).json()[0]
            return shown["expected_datetime"]

        expected_datetime = await eventually(expected, within_s=20, what="expected_datetime")
        history = (
            await http.get(f"/api/v1/incidents/{request_id}", headers={"X-API-Key": key})
        ).json()["events"]
    assigned = next(e for e in history if e["event_type"] == "assigned")
    at = datetime.fromisoformat(assigned["occurred_at"])
    started = {
        e["clock"]: datetime.fromisoformat(e["due_at"]) - at
        for e in history
        if e["event_type"] == "sla_clock_started"
    }
    assert started == {
        "accept": timedelta(minutes=30),
        "arrive": timedelta(minutes=60),
        "resolve": timedelta(hours=24),
    }
    assert expected_datetime == (at + timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M:%SZ")
    async with httpx.AsyncClient(base_url=sla, timeout=5) as http:
        clocks = (await http.get(f"/api/v1/incidents/{request_id}/clocks")).json()["clocks"]
    assert {c["clock"]: c["state"] for c in clocks} == {
        "accept": "running",
        "arrive": "running",
        "resolve": "running",
    }


def test_a_routing_policy_published_while_running_takes_effect(
    shared_up: RunningUp, tmp_path: Path
) -> None:
    up = shared_up
    shipped = Path(__file__).resolve().parents[2] / "config" / "longgang" / "routing.yaml"
    version_2 = tmp_path / "routing-v2.yaml"
    version_2.write_text(shipped.read_text().replace("policy_version: 1", "policy_version: 2", 1))
    env = {**os.environ, "CIVICGRID_NATS_PORT": str(up.nats_port)}
    env.pop("CIVICGRID_NATS_URL", None)
    published = subprocess.run(
        [
            sys.executable,
            "-m",
            "civicgrid.cli",
            "policy",
            "publish",
            str(version_2),
            "--data-dir",
            str(up.data_dir),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert published.returncode == 0, published.stderr
    assert "published version 2" in published.stdout
    explain = f"http://127.0.0.1:{up.ports['routing']}/api/v1/explain"
    query = {"lon": "120.56", "lat": "27.55", "category": "city-appearance.illegal-parking"}

    def explained_with_version_2() -> bool:
        return bool(httpx.get(explain, params=query, timeout=5).json()["policy_version"] == 2)

    _until(explained_with_version_2, 20, "new decisions on policy version 2")


def test_up_with_a_broken_city_says_what_is_wrong_and_starts_nothing(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[2] / "config" / "longgang"
    broken = tmp_path / "city"
    shutil.copytree(shipped, broken)
    units = broken / "units.yaml"
    units.write_text(units.read_text().replace("id: dept-urban-mgmt", "id: dept-renamed", 1))
    data_dir = tmp_path / "data"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "civicgrid.cli",
            "up",
            "--config",
            str(broken),
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "nothing was started" in result.stdout
    assert "matters.yaml" in result.stdout and "dept-urban-mgmt" in result.stdout
    assert not data_dir.exists()


async def test_after_nats_dies_it_is_restarted_and_nothing_is_lost(up: RunningUp) -> None:
    up.wait_for_line("civicgrid is up", START_DEADLINE_S)
    secrets = json.loads((up.data_dir / "credentials.json").read_text())
    intake = f"http://127.0.0.1:{up.ports['intake']}"
    form = {
        "api_key": secrets["dev_api_key"],
        "service_code": "city-appearance.illegal-parking",
        "lat": "27.5516",
        "long": "120.5548",
    }
    async with httpx.AsyncClient(base_url=intake, timeout=5) as http:

        async def agency_of(request_id: str) -> str | None:
            response = await http.get(f"/open311/v2/requests/{request_id}.json")
            return response.json()[0]["agency_responsible"] if response.is_success else None

        before = (await http.post("/open311/v2/requests.json", data=form)).json()[0]
        await eventually(lambda: agency_of(before["service_request_id"]), within_s=20)

        nats_pids = _nats_server_children(up.process.pid)
        assert len(nats_pids) == 1
        os.kill(nats_pids[0], signal.SIGKILL)
        up.wait_for_line("nats-server restarted", 30)

        async def accepted_after_restart() -> dict[str, str] | None:
            # Another matter: the same one at the same place would merge into `before`.
            another = {**form, "service_code": "water.waterlogging"}
            response = await http.post("/open311/v2/requests.json", data=another)
            return response.json()[0] if response.status_code == 201 else None

        after = await eventually(
            accepted_after_restart, within_s=30, interval_s=0.5, what="intake takes reports again"
        )
        # The services reconnected and their consumers resumed: the new report is routed ...
        await eventually(
            lambda: agency_of(after["service_request_id"]), within_s=30, what="routed after restart"
        )
        # ... and what was stored before the crash is still there.
        assert await agency_of(before["service_request_id"])
    assert up.stop() == 0


def _nats_server_children(pid: int) -> list[int]:
    return [
        child
        for child in _children_of(pid)
        if "nats-server" in Path(f"/proc/{child}/cmdline").read_text()
    ]


def test_killing_the_supervisor_outright_takes_its_children_with_it(up: RunningUp) -> None:
    up.wait_for_line("civicgrid is up", START_DEADLINE_S)
    children = _children_of(up.process.pid)
    assert len(children) == 5
    up.process.kill()
    up.process.wait()
    # Exited is gone: a zombie waits only for init (here a slow reaper, ~2 s) to collect it.
    _until(lambda: not any(_running(pid) for pid in children), 30, "every child gone")


# --- stopping at any moment ---------------------------------------------------------------------


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)


class HoldingProxy:
    """A TCP front for NATS: the first ``forward_first`` connections reach ``upstream``; every
    later one is accepted and held without a word, like a NATS that does not answer. What it
    holds is what is still connecting."""

    def __init__(self, upstream_port: int | None = None, forward_first: int = 0) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._upstream_port = upstream_port
        self._forward_first = forward_first
        self._accepted = 0
        self.held: list[socket.socket] = []
        self._open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._accepted += 1
            if self._upstream_port is not None and self._accepted <= self._forward_first:
                upstream = socket.create_connection(("127.0.0.1", self._upstream_port))
                self._open += [conn, upstream]
                threading.Thread(target=_pump, args=(conn, upstream), daemon=True).start()
                threading.Thread(target=_pump, args=(upstream, conn), daemon=True).start()
            else:
                self.held.append(conn)

    def close(self) -> None:
        for end in (self._listener, *self.held, *self._open):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


@pytest.fixture
def black_hole() -> Iterator[HoldingProxy]:
    proxy = HoldingProxy()
    yield proxy
    proxy.close()


@pytest.fixture
def provisions_then_hangs(tmp_path: Path) -> Iterator[HoldingProxy]:
    """A NATS that lets ``civicgrid up`` provision its streams, then answers nobody else: its
    services stay in their first connect."""
    server = EmbeddedNats(data_dir=tmp_path / "real-nats", port=free_port())
    server.start(log_file=tmp_path / "real-nats.log", die_with_parent=True)
    proxy = HoldingProxy(upstream_port=server.port, forward_first=1)
    yield proxy
    proxy.close()
    server.stop()


def _stop_up_or_kill(up: RunningUp) -> None:
    """After a failed test: nothing it started may outlive it."""
    children = _children_of(up.process.pid)
    if up.process.poll() is None:
        up.process.kill()
        up.process.wait()
    for pid in children:
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "processes",
    [1, 5],
    ids=["while-nats-server-starts", "while-the-services-start"],
)
def test_ctrl_c_early_in_a_cold_start_stops_everything_within_seconds(
    data_dir: Path, processes: int
) -> None:
    up = start_up(data_dir)
    try:
        # 1: nats-server is starting; 5: it and the four services exist, nothing ready yet.
        _until(lambda: len(_children_of(up.process.pid)) >= processes, 30, f"{processes} started")
        children = _children_of(up.process.pid)
        up.process.send_signal(signal.SIGINT)
        try:
            up.process.communicate(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"civicgrid up still running {STOP_WITHIN_S}s after Ctrl-C")
        assert up.process.returncode == 0
        assert not [pid for pid in children if _running(pid)]
    finally:
        _stop_up_or_kill(up)


@pytest.mark.timeout(120)
def test_ctrl_c_while_the_services_are_still_connecting_stops_everything_within_seconds(
    data_dir: Path, provisions_then_hangs: HoldingProxy
) -> None:
    up = start_up(data_dir, nats_url=provisions_then_hangs.url)
    try:
        _until(lambda: len(provisions_then_hangs.held) >= 4, 60, "the services connecting")
        children = _children_of(up.process.pid)
        assert len(children) == 4
        up.process.send_signal(signal.SIGINT)
        try:
            up.process.communicate(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"civicgrid up still running {STOP_WITHIN_S}s after Ctrl-C")
        assert not [pid for pid in children if _running(pid)]
    finally:
        _stop_up_or_kill(up)


@pytest.mark.timeout(120)
def test_ctrl_c_while_provisioning_against_a_silent_nats_stops_within_seconds(
    data_dir: Path, black_hole: HoldingProxy
) -> None:
    up = start_up(data_dir, nats_url=black_hole.url)
    try:
        _until(lambda: bool(black_hole.held), 30, "up connecting to provision")
        up.process.send_signal(signal.SIGINT)
        try:
            up.process.communicate(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            pytest.fail(f"civicgrid up still running {STOP_WITHIN_S}s after Ctrl-C")
        assert _children_of(up.process.pid) == []
    finally:
        _stop_up_or_kill(up)


@pytest.mark.timeout(120)
def test_killing_up_while_its_services_are_still_connecting_leaves_nothing_behind(
    data_dir: Path, provisions_then_hangs: HoldingProxy
) -> None:
    up = start_up(data_dir, nats_url=provisions_then_hangs.url)
    children: list[int] = []
    try:
        _until(lambda: len(provisions_then_hangs.held) >= 4, 60, "the services connecting")
        children = _children_of(up.process.pid)
        assert len(children) == 4
        up.process.kill()
        up.process.wait()
        _until(
            lambda: not any(_running(pid) for pid in children), STOP_WITHIN_S, "every service gone"
        )
    finally:
        for pid in children:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.timeout(120)
def test_a_service_still_connecting_to_nats_stops_promptly_on_sigterm(
    tmp_path: Path, black_hole: HoldingProxy
) -> None:
    env = {
        **os.environ,
        "CIVICGRID_NATS_URL": black_hole.url,
        "CIVICGRID_ROUTING_PORT": str(free_port()),
    }
    with open(tmp_path / "routing.log", "wb") as log:
        service = subprocess.Popen(
            [sys.executable, "-m", "civicgrid.routing"], env=env, stdout=log, stderr=log
        )
    try:
        _until(lambda: bool(black_hole.held), 60, "routing connecting to NATS")
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=STOP_WITHIN_S / 2)
        except subprocess.TimeoutExpired:
            pytest.fail(f"routing ignored SIGTERM while connecting: {service.pid} still running")
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()


async def test_two_instances_of_each_service_take_each_report_once(data_dir: Path) -> None:
    """Two intake and two routing processes (and two of sla and reporting) on one NATS: one
    problem reported to both intakes at once is one incident, assigned once."""
    running = start_up(data_dir, instances=2)
    try:
        running.wait_for_line("civicgrid is up", START_DEADLINE_S)
        secrets = json.loads((data_dir / "credentials.json").read_text())
        key = secrets["dev_api_key"]
        intakes = [
            f"http://127.0.0.1:{running.ports['intake'] + n * INSTANCE_PORT_STEP}" for n in (0, 1)
        ]
        places = [(120.5548 + 0.004 * n, 27.5516) for n in range(8)]

        async def report(http: httpx.AsyncClient, lon: float, lat: float) -> str:
            created = await http.post(
                "/open311/v2/requests.json",
                data={
                    "api_key": key,
                    "service_code": "city-appearance.illegal-parking",
                    "lat": str(lat),
                    "long": str(lon),
                    "description": "违停堵门",
                },
            )
            assert created.status_code in (200, 201), created.text
            return str(created.json()[0]["service_request_id"])

        async with (
            httpx.AsyncClient(base_url=intakes[0], timeout=10) as first,
            httpx.AsyncClient(base_url=intakes[1], timeout=10) as second,
        ):
            pairs = [
                await asyncio.gather(report(first, lon, lat), report(second, lon, lat + 0.0001))
                for lon, lat in places
            ]
        assert all(a == b for a, b in pairs), pairs
        admin = await nats.connect(
            f"nats://admin:{secrets['passwords']['admin']}@127.0.0.1:{running.nats_port}"
        )
        try:
            store = EventStore(admin.jetstream())

            async def each_assigned_once() -> list[list[str]] | None:
                kinds = [[e.event_type for e in await store.load(i)] for i, _ in pairs]
                done = all("assigned" in k for k in kinds)
                return kinds if done else None

            await eventually(each_assigned_once, within_s=30, what="assignments")

            async def routing_drained() -> bool:
                info = await admin.jetstream().consumer_info("INCIDENTS", "routing")
                return info.num_pending == 0 and info.num_ack_pending == 0

            # Both routing instances have finished with every event: any double is written now.
            await eventually(routing_drained, within_s=30, what="routing's consumer drained")
            histories = await each_assigned_once()
            assert histories is not None
            for kinds in histories:
                assert kinds.count("reported") == 1, kinds
                assert kinds.count("merged") == 1, kinds
                assert kinds.count("assigned") == 1, kinds
        finally:
            await admin.close()
        assert running.stop() == 0
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
