"""``civicgrid up``: NATS (embedded unless --nats), streams, users, and the four services."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats

from civicgrid.city import CityConfigError, default_config_dir, load_city
from civicgrid.cli.credentials import Credentials, load_or_create
from civicgrid.cli.nats_config import authorization_block
from civicgrid.cli.supervisor import Child, EventPrinter, Supervisor
from civicgrid.events.ownership import SERVICES
from civicgrid.events.streams import ensure_streams
from civicgrid.servicekit.natsserver import EmbeddedNats
from civicgrid.servicekit.settings import DEFAULT_PORTS, ServiceSettings

READY_DEADLINE_S = 90.0


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    config_dir: Path | None
    nats_url: str | None
    nats_port: int
    http_host: str
    ports: dict[str, int]
    dev_api_key: str | None


async def provision(url: str, replicas: int = 1) -> None:
    client = await nats.connect(url, name="civicgrid-provisioner", connect_timeout=5)
    try:
        await ensure_streams(client.jetstream(), replicas=replicas)
    finally:
        await client.drain()


def service_env(options: UpOptions, service: str, nats_url: str, api_key: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CIVICGRID_NATS_URL": nats_url,
            "CIVICGRID_HTTP_HOST": options.http_host,
            f"CIVICGRID_{service.upper()}_PORT": str(options.ports[service]),
            "CIVICGRID_DEV_API_KEY": api_key,
            "CIVICGRID_INSTANCE": f"{service}-1",
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
        f"  logs       {options.data_dir / 'logs'}",
    ]
    if credentials is not None:
        lines.append(f"  dev API key (X-API-Key): {credentials.dev_api_key}")
        lines.append(f"  NATS users and passwords: {options.data_dir / 'credentials.json'}")
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


async def keep_nats_running(server: EmbeddedNats, supervisor: Supervisor, log_file: Path) -> None:
    """Restart the embedded nats-server if it dies; the services reconnect on their own."""
    while True:
        process = server.process
        assert process is not None
        code = await asyncio.to_thread(process.wait)
        if supervisor.stopping:
            return
        supervisor.on_event(f"nats-server exited with code {code}; restarting it")
        # On the main thread, not a worker: the kernel ties the child's death signal to the
        # thread that forked it.
        server.start(log_file=log_file, die_with_parent=True)
        supervisor.on_event("nats-server restarted")


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
        say(f"starting nats-server on 127.0.0.1:{options.nats_port}")
        server.start(log_file=nats_log, die_with_parent=True)
        admin_url = credentials.url_for("admin", "127.0.0.1", options.nats_port)
        urls = {s: credentials.url_for(s, "127.0.0.1", options.nats_port) for s in SERVICES}
        nats_shown = f"nats://127.0.0.1:{options.nats_port} (JetStream, {options.data_dir})"
        api_key = credentials.dev_api_key
    else:
        admin_url = options.nats_url
        urls = {service: options.nats_url for service in SERVICES}
        nats_shown = options.nats_url.split("@")[-1]
        api_key = options.dev_api_key or ""

    try:
        await provision(admin_url)
        children = [
            Child(
                name=service,
                argv=[sys.executable, "-m", f"civicgrid.{service}"],
                env=service_env(options, service, urls[service], api_key),
                log_path=options.data_dir / "logs" / f"{service}.log",
            )
            for service in SERVICES
        ]
        supervisor = Supervisor(children, say)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, supervisor.request_stop)
        await supervisor.start_all()
        watching = asyncio.create_task(supervisor.run_until_stopped())
        nats_keeper = (
            asyncio.create_task(keep_nats_running(server, supervisor, nats_log))
            if server is not None
            else None
        )
        ready = await wait_ready(options.http_host, options.ports, READY_DEADLINE_S)
        not_ready = {service: state for service, state in ready.items() if state != "ready"}
        if not_ready and not watching.done():
            say(f"not ready after {READY_DEADLINE_S:.0f}s: {not_ready} (see the logs)")
        elif not watching.done():
            print(banner(options, nats_shown, credentials), flush=True)
        await watching
        say("services stopped")
        if nats_keeper is not None:
            nats_keeper.cancel()
        return 0
    finally:
        if server is not None:
            server.stop()
            say("nats-server stopped")


def default_ports() -> dict[str, int]:
    # The services read their ports through ServiceSettings; so does `up`, with the same checks.
    return {service: ServiceSettings.from_env(service).http_port for service in DEFAULT_PORTS}
