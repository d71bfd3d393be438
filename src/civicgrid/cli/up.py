"""``civicgrid up``: NATS (embedded unless --nats), streams, users, and the four services."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import nats
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from civicgrid.city import CityConfigError, default_config_dir, load_city
from civicgrid.cli import running
from civicgrid.cli.credentials import Credentials, load_or_create
from civicgrid.cli.nats_config import authorization_block
from civicgrid.cli.supervisor import HEALTHY_RUN_S, Child, EventPrinter, Supervisor
from civicgrid.events.ownership import SERVICES
from civicgrid.events.streams import INCIDENTS, ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats, NatsServerError
from civicgrid.servicekit.seeds import NatsSeeds
from civicgrid.servicekit.service import while_jetstream_recovers
from civicgrid.servicekit.settings import DEFAULT_PORTS, ServiceSettings

READY_DEADLINE_S = 90.0
NATS_RESTART_FIRST_BACKOFF_S = 1.0
NATS_RESTART_MAX_BACKOFF_S = 30.0

T = TypeVar("T")


class Stopped(Exception):
    """A stop (Ctrl-C, SIGTERM) was requested while a start-up step ran; the step was abandoned."""


async def unless_stopped(step: Awaitable[T], supervisor: Supervisor) -> T:
    """Run one start-up step, cancelling it as soon as a stop is requested: Ctrl-C works at any
    moment of a start-up, however long a step would take."""
    task = asyncio.ensure_future(step)
    stop = asyncio.create_task(supervisor.stopped())
    try:
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise Stopped
    return task.result()


INSTANCE_PORT_STEP = 100


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    config_dir: Path | None
    nats_url: str | None
    nats_port: int
    http_host: str
    ports: dict[str, int]
    dev_api_key: str | None
    # Processes per service: instance n (from 1) serves HTTP on the service's port + 100 * (n - 1).
    instances: int = 1

    def processes(self) -> dict[str, tuple[str, int, int]]:
        """Process name -> (service, instance number, HTTP port), e.g. "routing-2"."""
        return {
            (service if n == 1 else f"{service}-{n}"): (
                service,
                n,
                self.ports[service] + INSTANCE_PORT_STEP * (n - 1),
            )
            for service in SERVICES
            for n in range(1, self.instances + 1)
        }


async def provision(url: str, replicas: int | None = None) -> int:
    """Create or update the streams and buckets; ``url`` is one NATS URL or a list of seeds.

    Without ``replicas``, streams keep the replicas they were provisioned with (1 for new ones):
    `up` on a cluster provisioned with ``--replicas 3`` must not scale it down. Returns the
    replicas used.
    """
    seeds = NatsSeeds.parse(url)
    client = await nats.connect(
        **seeds.connect_options(), name="civicgrid-provisioner", connect_timeout=5
    )
    try:
        js = client.jetstream()
        if replicas is None:
            replicas = await provisioned_replicas(js)
        await ensure_streams(js, replicas=replicas)
    finally:
        await client.drain()
    return replicas


async def _provisioned(url: str) -> None:
    await provision(url)


async def provisioned_replicas(js: JetStreamContext) -> int:
    """The replicas INCIDENTS has, or 1 on a NATS not provisioned yet."""
    try:
        info = await js.stream_info(INCIDENTS)
    except NotFoundError:
        return 1
    return int(info.config.num_replicas or 1)


def service_env(
    options: UpOptions,
    service: str,
    nats_url: str,
    api_key: str,
    *,
    instance: int = 1,
    port: int | None = None,
) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CIVICGRID_NATS_URL": nats_url,
            "CIVICGRID_HTTP_HOST": options.http_host,
            f"CIVICGRID_{service.upper()}_PORT": str(port or options.ports[service]),
            "CIVICGRID_DEV_API_KEY": api_key,
            "CIVICGRID_INSTANCE": f"{service}-{instance}",
            # Reporting keeps its SQLite read model here unless CIVICGRID_REPORTING_DB says else.
            "CIVICGRID_DATA_DIR": str(options.data_dir),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if options.config_dir is not None:
        env["CIVICGRID_CONFIG"] = str(options.config_dir.resolve())
    return env


async def wait_ready(host: str, ports: dict[str, int], deadline_s: float) -> dict[str, str]:
    """Each service's readiness, polled until all are ready or the deadline passes."""
    status = {service: "starting" for service in ports}
    deadline = time.monotonic() + deadline_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            for service, port in ports.items():
                if status[service] == "ready":
                    continue
                try:
                    response = await client.get(f"http://{host}:{port}/readyz")
                except httpx.HTTPError:
                    continue
                status[service] = "ready" if response.status_code == 200 else response.text
            if all(value == "ready" for value in status.values()):
                break
            await asyncio.sleep(0.2)
    return status


def banner(options: UpOptions, nats_shown: str, credentials: Credentials | None) -> str:
    host = options.http_host
    lines = [
        f"civicgrid is up  (data: {options.data_dir})",
        f"  NATS       {nats_shown}",
        f"  intake     http://{host}:{options.ports['intake']}"
        "   Open311: /open311/v2/services.json   API: /api/v1/   docs: /docs",
        f"  routing    http://{host}:{options.ports['routing']}",
        f"  sla        http://{host}:{options.ports['sla']}",
        f"  reporting  http://{host}:{options.ports['reporting']}",
        "  every service: /healthz /readyz /metrics",
        *([_instances_line(options.instances)] if options.instances > 1 else []),
        f"  logs       {options.data_dir / 'logs'}",
    ]
    if credentials is not None:
        lines.append(f"  dev API key (X-API-Key): {credentials.dev_api_key}")
        lines.append(f"  NATS users and passwords: {options.data_dir / 'credentials.json'}")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


def _instances_line(instances: int) -> str:
    step = INSTANCE_PORT_STEP
    return f"  {instances} instances of each service: instance n on its port + {step} * (n - 1)"


async def keep_nats_running(server: EmbeddedNats, supervisor: Supervisor, log_file: Path) -> None:
    """Restart the embedded nats-server if it dies; the services reconnect on their own.

    After a healthy run the restart is immediate. A restart that fails (the port taken, the
    store unreadable), or a server that dies again soon, is said and retried with back-off
    until it works or a stop is requested.
    """
    backoff = NATS_RESTART_FIRST_BACKOFF_S
    while not supervisor.stopping:
        process = server.process
        assert process is not None
        running_since = time.monotonic()
        code = await asyncio.to_thread(process.wait)
        if supervisor.stopping:
            return
        if time.monotonic() - running_since > HEALTHY_RUN_S:
            backoff = NATS_RESTART_FIRST_BACKOFF_S
            supervisor.on_event(f"nats-server exited with code {code}; restarting it")
        else:
            supervisor.on_event(
                f"nats-server exited with code {code} soon after starting;"
                f" restarting it in {backoff:.0f}s"
            )
            if await supervisor.stopped_within(backoff):
                return
            backoff = min(backoff * 2, NATS_RESTART_MAX_BACKOFF_S)
        while True:
            try:
                # On the main thread (the loop's), not a worker: the kernel ties the child's
                # death signal to the thread that forked it.
                await unless_stopped(
                    server.start_async(log_file=log_file, die_with_parent=True), supervisor
                )
            except Stopped:
                return
            except (NatsServerError, OSError) as exc:
                await asyncio.to_thread(server.stop)
                supervisor.on_event(
                    f"nats-server restart failed: {exc}; retrying in {backoff:.0f}s"
                    f" (log: {log_file})"
                )
                if await supervisor.stopped_within(backoff):
                    return
                backoff = min(backoff * 2, NATS_RESTART_MAX_BACKOFF_S)
                continue
            supervisor.on_event("nats-server restarted")
            break


def _say_if_crashed(say: EventPrinter, what: str) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            say(f"{what} failed: {task.exception()!r}")

    return done


def check_city(config_dir: Path | None) -> str | None:
    """Load and validate the city once before anything starts: a bad file is a clear error
    here, not four services crash-looping behind a supervisor."""
    try:
        load_city(config_dir if config_dir is not None else default_config_dir())
    except CityConfigError as exc:
        return str(exc)
    return None


async def run_up(options: UpOptions) -> int:
    say = EventPrinter()
    problem = check_city(options.config_dir)
    if problem is not None:
        say(f"the city configuration is not valid; nothing was started:\n{problem}")
        return 2
    options.data_dir.mkdir(parents=True, exist_ok=True)
    server: EmbeddedNats | None = None
    credentials: Credentials | None = None
    nats_log = options.data_dir / "logs" / "nats-server.log"
    if options.nats_url is None:
        credentials = load_or_create(options.data_dir, options.dev_api_key)
        server = EmbeddedNats(
            data_dir=options.data_dir,
            port=options.nats_port,
            config_text=authorization_block(credentials),
        )
        admin_url = credentials.url_for("admin", "127.0.0.1", options.nats_port)
        urls = {s: credentials.url_for(s, "127.0.0.1", options.nats_port) for s in SERVICES}
        nats_shown = f"nats://127.0.0.1:{options.nats_port} (JetStream, {options.data_dir})"
        api_key = credentials.dev_api_key
    else:
        admin_url = options.nats_url
        urls = {service: options.nats_url for service in SERVICES}
        nats_shown = NatsSeeds.parse(options.nats_url).shown()
        api_key = options.dev_api_key or ""

    processes = options.processes()
    children = [
        Child(
            name=name,
            argv=[sys.executable, "-m", f"civicgrid.{service}"],
            env=service_env(options, service, urls[service], api_key, instance=number, port=port),
            log_path=options.data_dir / "logs" / f"{name}.log",
        )
        for name, (service, number, port) in processes.items()
    ]
    supervisor = Supervisor(children, say)
    # Before anything starts: Ctrl-C stops whatever step the start-up is in.
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, supervisor.request_stop)
    watching: asyncio.Task[None] | None = None
    nats_keeper: asyncio.Task[None] | None = None
    try:
        if server is not None:
            say(f"starting nats-server on 127.0.0.1:{options.nats_port}")
            await unless_stopped(
                server.start_async(log_file=nats_log, die_with_parent=True), supervisor
            )
            running.record(options.data_dir, options.nats_port)  # for `civicgrid policy`
            nats_keeper = asyncio.create_task(keep_nats_running(server, supervisor, nats_log))
            nats_keeper.add_done_callback(_say_if_crashed(say, "watching nats-server"))
        # Right after a cluster node died its streams elect new leaders: wait that out.
        await unless_stopped(
            while_jetstream_recovers(
                lambda: _provisioned(admin_url), "provisioning the streams", on_retry=say
            ),
            supervisor,
        )
        await supervisor.start_all()
        watching = asyncio.create_task(supervisor.run_until_stopped())
        ready = await unless_stopped(
            wait_ready(
                options.http_host,
                {name: port for name, (_, _, port) in processes.items()},
                READY_DEADLINE_S,
            ),
            supervisor,
        )
        not_ready = {service: state for service, state in ready.items() if state != "ready"}
        if not_ready and not watching.done():
            say(f"not ready after {READY_DEADLINE_S:.0f}s: {not_ready} (see the logs)")
        elif not watching.done():
            print(banner(options, nats_shown, credentials), flush=True)
        await watching
    except Stopped:
        pass
    finally:
        say("stopping")
        if watching is not None:
            supervisor.request_stop()
            await watching
        else:
            await supervisor.stop_all()
        say("services stopped")
        if nats_keeper is not None:
            nats_keeper.cancel()
            await asyncio.gather(nats_keeper, return_exceptions=True)
        if server is not None:
            await asyncio.to_thread(server.stop)
            running.forget()
            say("nats-server stopped")
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    return 0


def default_ports() -> dict[str, int]:
    # The services read their ports through ServiceSettings; so does `up`, with the same checks.
    return {service: ServiceSettings.from_env(service).http_port for service in DEFAULT_PORTS}
