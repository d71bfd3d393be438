"""The platform as real processes on loopback: nats-server(s) with the embedded platform's
users and permissions, and each service as ``python -m civicgrid.<service>``.

Every process dies with the test process (PR_SET_PDEATHSIG) and is stopped by the fixture that
started it, so nothing outlives a test, even a failed one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from civicgrid.cli.credentials import Credentials, load_or_create
from civicgrid.cli.nats_config import authorization_block
from civicgrid.events.ownership import SERVICES
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port, wait_for_port
from civicgrid.servicekit.orphans import die_with_parent
from tests.support.events.waiting import eventually

__all__ = ["CLUSTER_NODES", "SERVICES", "NatsCluster", "Platform", "ServiceProcess"]

DEV_API_KEY = "dev-chaos-key"
READY_WITHIN_S = 60.0
# The chaos tests' cluster: three nodes, every stream R3.
CLUSTER_NODES = 3
STOP_WITHIN_S = 10.0


@dataclass
class NatsCluster:
    """One nats-server or several, routed into one JetStream cluster on loopback ports."""

    root: Path
    credentials: Credentials
    size: int = 1
    servers: list[EmbeddedNats] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = [free_port() for _ in range(self.size)]
        cluster_ports = [free_port() for _ in range(self.size)]
        users = authorization_block(self.credentials)
        for index, port in enumerate(ports):
            extra = users
            if self.size > 1:
                routes = ", ".join(
                    f"nats-route://127.0.0.1:{p}" for i, p in enumerate(cluster_ports) if i != index
                )
                extra += (
                    "cluster {\n  name: civicgrid-chaos\n  host: 127.0.0.1\n"
                    f"  port: {cluster_ports[index]}\n  routes: [{routes}]\n}}\n"
                )
            self.servers.append(
                EmbeddedNats(
                    data_dir=self.root / f"node-{index}",
                    port=port,
                    config_text=extra,
                    monitor_port=free_port(),
                )
            )

    def start(self) -> None:
        # Launched together: a node of a cluster waits for its peers before JetStream is up.
        for server in self.servers:
            server.launch(log_file=self.log_of(server), die_with_parent=True)
        for server in self.servers:
            assert server.process is not None
            wait_for_port(server.host, server.port, 30.0, server.process)

    def restart(self, server: EmbeddedNats) -> None:
        server.start(log_file=self.log_of(server), die_with_parent=True, deadline_s=30.0)

    def log_of(self, server: EmbeddedNats) -> Path:
        return server.data_dir / "nats-server.log"

    def seeds(self, user: str) -> str:
        """Every node's URL with ``user``'s identity, comma-separated, as `--nats` takes it."""
        return ",".join(
            self.credentials.url_for(user, "127.0.0.1", server.port) for server in self.servers
        )

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


@dataclass
class ServiceProcess:
    service: str
    instance: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"civicgrid.{self.service}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        self.starts += 1

    def kill(self) -> None:
        """kill -9: no goodbye, no ack, no flush."""
        assert self.process is not None and self.process.poll() is None, f"{self.instance} dead"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_WITHIN_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    async def problems(self, http: httpx.AsyncClient) -> list[str] | None:
        """What /readyz lists; None while nothing answers."""
        try:
            response = await http.get(f"{self.url}/readyz", timeout=2)
        except httpx.HTTPError:
            return None
        problems: list[str] = response.json().get("problems", [])
        return problems

    async def wait_ready(self, within_s: float = READY_WITHIN_S) -> None:
        last: list[list[str] | None] = [None]
        async with httpx.AsyncClient() as http:

            async def ready() -> bool:
                if self.process is not None and self.process.poll() is not None:
                    raise AssertionError(
                        f"{self.instance} exited with {self.process.returncode}: {self.log_tail()}"
                    )
                last[0] = await self.problems(http)
                return last[0] == []

            what = f"{self.instance} ready"
            try:
                await eventually(ready, within_s=within_s, interval_s=0.1, what=what)
            except AssertionError as exc:
                # What /readyz said last (None: it did not answer): why it never became ready.
                raise AssertionError(f"{exc}; /readyz problems: {last[0]}") from None

    def log_tail(self, lines: int = 20) -> str:
        """The last lines that are not routine (info) lines: what a failed test wants."""
        with contextlib.suppress(FileNotFoundError):
            every = self.log_path.read_text(errors="replace").splitlines()
            unusual = [line for line in every if '"level": "info"' not in line]
            return "\n".join(line[:400] for line in unusual[-lines:])
        return ""


@dataclass
class Platform:
    """The four services (one or more replicas each) against ``nats``, with its users."""

    nats: NatsCluster
    root: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, nodes: int = 1) -> Platform:
        credentials = load_or_create(root / "secrets", DEV_API_KEY)
        return cls(NatsCluster(root / "nats", credentials, size=nodes), root)

    @property
    def api_key(self) -> str:
        return self.nats.credentials.dev_api_key

    def admin_seeds(self) -> str:
        return self.nats.seeds("admin")

    def provision(self) -> str:
        """``civicgrid provision --nats <every seed> --replicas <nodes>``, as operators run it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CIVICGRID_")}
        done = subprocess.run(
            [
                *(sys.executable, "-m", "civicgrid.cli", "provision"),
                *("--nats", self.admin_seeds(), "--replicas", str(self.nats.size)),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def add(self, service: str) -> ServiceProcess:
        replica = 1 + sum(1 for p in self.processes if p.service == service)
        instance = f"{service}-{replica}"
        port = free_port()
        env = {
            **os.environ,
            "CIVICGRID_NATS_URL": self.nats.seeds(service),
            f"CIVICGRID_{service.upper()}_PORT": str(port),
            "CIVICGRID_HTTP_HOST": "127.0.0.1",
            "CIVICGRID_DEV_API_KEY": self.api_key,
            "CIVICGRID_INSTANCE": instance,
            "CIVICGRID_STREAM_REPLICAS": str(self.nats.size),
            # Where reporting keeps its read model (shared by its replicas), never the cwd's.
            "CIVICGRID_DATA_DIR": str(self.root / "data"),
            "PYTHONUNBUFFERED": "1",
        }
        for inherited in (f"CIVICGRID_{service.upper()}_NATS_URL", "CIVICGRID_REPORTING_DB"):
            env.pop(inherited, None)
        log_path = self.root / "logs" / f"{instance}.log"
        process = ServiceProcess(service, instance, port, env, log_path)
        self.processes.append(process)
        return process

    def of(self, service: str) -> list[ServiceProcess]:
        return [p for p in self.processes if p.service == service]

    async def start_all(self) -> None:
        for process in self.processes:
            process.start()
        await asyncio.gather(*(process.wait_ready() for process in self.processes))

    def stop(self) -> None:
        for process in self.processes:
            if process.process is not None and process.process.poll() is None:
                process.process.send_signal(signal.SIGTERM)
        for process in self.processes:
            process.stop()
        self.nats.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.instance}\n{p.log_tail()}" for p in self.processes)
