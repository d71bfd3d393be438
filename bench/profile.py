"""Where the services spend their time under the end-to-end load: ``python -m bench.profile``.

Starts the platform as ``bench.end_to_end`` does (``civicgrid up`` on a fresh nats-server),
drives Open311 POSTs with wrk for a while, and meanwhile samples every service process with
py-spy (a dev dependency). Prints, per service, the functions with the most samples: their own
(self) share and the share of samples they are on the stack for (inclusive), both as a
percentage of that process's samples. The README's bench section quotes this output.

``python -m bench.profile [seconds] [mixed|storm|relay [SHAPE]]`` (relay: the baseline's CPU per
report, without py-spy; SHAPE is the JSON of a ``bench.relay.Shape``, thin by default, e.g. the
shape ``python -m bench end-to-end`` prints).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx
import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from bench import end_to_end, relay
from bench.city import platform_env
from civicgrid.events import streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port

SERVICES = ("intake", "routing", "sla", "reporting")
TOP = 12


def _children(pid: int) -> dict[str, int]:
    """The service processes that ``civicgrid up`` started, by service name."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        parent = next(line for line in status.splitlines() if line.startswith("PPid:"))
        if int(parent.split()[1]) != pid:
            continue
        for service in SERVICES:
            if f"civicgrid.{service}" in command:
                found[service] = int(entry.name)
    return found


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _print_cpu(during: dict[str, float], whole: dict[str, float], accepted: int) -> None:
    """CPU ms per accepted report, while wrk ran and until everything was projected."""
    print("CPU ms per accepted report: while wrk ran / until the whole flow was projected")
    for name in during:
        print(f"  {name:12} {1000 * during[name] / max(1, accepted):6.2f} "
              f"{1000 * whole[name] / max(1, accepted):6.2f}")  # fmt: skip
    print(f"  {'all':12} {1000 * sum(during.values()) / max(1, accepted):6.2f} "
          f"{1000 * sum(whole.values()) / max(1, accepted):6.2f}")  # fmt: skip


def _messages_by_client(monitor_port: int) -> collections.Counter[str]:
    """Messages each client has sent the server so far (publishes, requests, pulls, acks), by
    connection name: the server's own count, which does not depend on how busy the machine is."""
    url = f"http://127.0.0.1:{monitor_port}/connz?limit=4096"
    with urllib.request.urlopen(url, timeout=10) as answer:
        connections = json.load(answer)["connections"]
    counted: collections.Counter[str] = collections.Counter()
    for connection in connections:
        counted[connection.get("name") or "?"] += connection.get("in_msgs", 0)
    return counted


def _print_messages(
    before: collections.Counter[str], after: collections.Counter[str], accepted: int
) -> None:
    print("messages sent to the server per accepted report, by client (until projected)")
    for name in sorted(after):
        sent = after[name] - before.get(name, 0)
        if sent > 0 and name != "bench-profile":
            print(f"  {name:28} {sent / max(1, accepted):6.2f}")
    total = sum(after.values()) - sum(before.values())
    print(f"  {'all':28} {total / max(1, accepted):6.2f}")


def _summarise(raw: Path) -> tuple[int, list[tuple[str, int, int]]]:
    """(samples, [(frame, self samples, inclusive samples)]) from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith("process ")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    ranked = sorted(own, key=lambda f: -own[f])[:TOP]
    return total, [(frame, own[frame], inclusive[frame]) for frame in ranked]


# py-spy names a frame's file from its package directory on: "(intake/claims.py:98)".
OURS = re.compile(r"\((intake|routing|sla|reporting|events|servicekit|city)/")


def _inclusive_top(raw: Path) -> list[tuple[str, int]]:
    """Our own functions by the share of samples they are on the stack for."""
    inclusive: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        frames = {f for f in stack.split(";") if OURS.search(f) and "__main__" not in f}
        for frame in frames - {f for f in frames if "serving.py" in f or "service.py:262" in f}:
            inclusive[frame] += int(count_text)
    return inclusive.most_common(TOP)


class _Requests:
    """Direct Gets, leader message gets and pull requests by stream (and consumer), as a plain
    subscriber sees them (the server hands a copy of each request to every subscriber of its
    subject, which costs it a little)."""

    SUBJECTS = ("$JS.API.DIRECT.GET.>", "$JS.API.STREAM.MSG.GET.>", "$JS.API.CONSUMER.MSG.NEXT.>")

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()

    async def watch(self, client: NatsClient) -> None:
        async def count(msg: Msg) -> None:
            self.counts[msg.subject.removeprefix("$JS.API.")] += 1

        for subject in self.SUBJECTS:
            await client.subscribe(subject, cb=count)

    def print_per_report(self, accepted: int) -> None:
        print("Requests per accepted report (by API subject):")
        for subject, count in sorted(self.counts.items()):
            print(f"  {subject:40} {count / max(1, accepted):6.2f}")


# The lines of each service's /metrics worth reading beside the profile.
MEASURED = ("civicgrid_history_reads_total", "civicgrid_routing_conflicts_total")


def _print_measured(ports: dict[str, int]) -> None:
    for service, port in ports.items():
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(MEASURED):
                print(f"  {service:12} {line}")


def _sample(py_spy: Path, pid: int, seconds: float, output: Path) -> subprocess.Popen[bytes]:
    """py-spy on one process for ``seconds``, without pausing it, as collapsed stacks."""
    return subprocess.Popen(
        [str(py_spy), "record", "--pid", str(pid), "--duration", str(round(seconds)),
         "--rate", "200", "--nonblocking", "--format", "raw", "--output", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def relay_cpu(seconds: float, shape: relay.Shape) -> None:
    """The relay's CPU time per report (``bench.relay``, the end-to-end baseline), measured the
    same way: what a report costs with no logic."""
    with tempfile.TemporaryDirectory(prefix="civicgrid-profile-") as name:
        directory = Path(name)
        script = end_to_end._wrk_script(end_to_end._bodies(2000, None), directory)
        server = EmbeddedNats(data_dir=directory / "nats", port=free_port())
        server.start()
        client = await nats.connect(server.client_url, name="bench-profile")
        await relay.ensure_streams(client)
        port, url = free_port(), server.client_url
        parts = relay.parts(port, url, str(directory / "relay.sqlite"), shape)
        processes = {n: end_to_end._spawn(["-m", "bench.relay", *a]) for n, a in parts.items()}
        try:
            end_to_end._wait_http(f"http://127.0.0.1:{port}/", 30)
            assert server.process is not None
            pids = {n: p.pid for n, p in processes.items()} | {"nats-server": server.process.pid}
            before = {n: _cpu_seconds(pid) for n, pid in pids.items()}
            total, failed = await asyncio.to_thread(
                end_to_end._wrk, f"http://127.0.0.1:{port}/open311/v2/requests.json", seconds,
                script,
            )  # fmt: skip
            accepted = total - failed
            during = {n: _cpu_seconds(pid) - before[n] for n, pid in pids.items()}
            position = end_to_end.relay_position(directory / "relay.sqlite")
            await end_to_end._until_projected(client, relay.STREAM, position, 300)
            whole = {n: _cpu_seconds(pid) - before[n] for n, pid in pids.items()}
            print(f"relay ({shape.describe()}): {accepted} reports accepted ({failed} refused)")
            _print_cpu(during, whole, accepted)
        finally:
            end_to_end._stop(list(processes.values()))
            await client.close()
            server.stop()


async def main(seconds: float, load: str, shape: relay.Shape) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    if load == "relay":
        await relay_cpu(seconds, shape)
        return
    py_spy = Path(sys.executable).with_name("py-spy")
    with tempfile.TemporaryDirectory(prefix="civicgrid-profile-") as name:
        directory = Path(name)
        bodies = end_to_end._bodies(2000, "water.waterlogging" if load == "storm" else None)
        script = end_to_end._wrk_script(bodies, directory)
        monitor_port = free_port()
        server = EmbeddedNats(
            data_dir=directory / "nats", port=free_port(), monitor_port=monitor_port
        )
        server.start()
        client = await nats.connect(server.client_url, name="bench-profile")
        ports = {s: free_port() for s in SERVICES}
        env = platform_env(ports, end_to_end.API_KEY, directory)
        up = end_to_end._spawn(
            ["-m", "civicgrid.cli", "up", "--nats", server.client_url, "--data-dir",
             str(directory / "data")],
            env,
        )  # fmt: skip
        try:
            for port in ports.values():
                end_to_end._wait_http(f"http://127.0.0.1:{port}/readyz", 120)
            pids = _children(up.pid)
            samplers = {
                service: _sample(py_spy, pid, seconds, directory / f"{service}.txt")
                for service, pid in pids.items()
            }
            assert server.process is not None
            pids["nats-server"] = server.process.pid
            requests = _Requests()
            await requests.watch(client)
            await client.flush()
            cpu_before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
            messages_before = _messages_by_client(monitor_port)
            started = time.monotonic()
            total, failed = await asyncio.to_thread(
                end_to_end._wrk,
                f"http://127.0.0.1:{ports['intake']}/open311/v2/requests.json",
                seconds,
                script,
            )
            took = time.monotonic() - started
            cpu = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            position = end_to_end.reporting_position(ports["reporting"])
            projected = await end_to_end._until_projected(client, streams.INCIDENTS, position, 600)
            whole = {name: _cpu_seconds(pid) - cpu_before[name] for name, pid in pids.items()}
            messages_after = _messages_by_client(monitor_port)
            for sampler in samplers.values():
                sampler.wait(timeout=seconds + 60)
            accepted = total - failed
            print(f"{load}: {accepted} reports accepted ({failed} refused) in {took:.1f} s,"
                  f" projected {projected - started - took:.1f} s after; end to end"
                  f" {accepted / (projected - started):.0f}/s")  # fmt: skip
            _print_cpu(cpu, whole, accepted)
            _print_messages(messages_before, messages_after, accepted)
            requests.print_per_report(accepted)
            _print_measured(ports)
            for service in SERVICES:
                if service not in samplers:
                    continue
                raw = directory / f"{service}.txt"
                if not raw.exists():
                    print(f"\n{service}: no profile")
                    continue
                samples, ranked = _summarise(raw)
                print(f"\n{service}: {samples} samples; self% incl% frame")
                for frame, own, inclusive in ranked:
                    print(f"  {100 * own / samples:5.1f} {100 * inclusive / samples:5.1f}  {frame}")
                print("  civicgrid frames by inclusive share:")
                for frame, count in _inclusive_top(raw):
                    print(f"        {100 * count / samples:5.1f}  {frame}")
                if os.environ.get("CIVICGRID_PROFILE_KEEP"):
                    shutil.copy(raw, Path(os.environ["CIVICGRID_PROFILE_KEEP"]) / raw.name)
        finally:
            end_to_end._stop([up])
            await client.close()
            server.stop()


if __name__ == "__main__":
    arguments = sys.argv[1:]
    seconds = float(arguments[0]) if arguments else 10.0
    shape = relay.Shape.decode(arguments[2]) if len(arguments) > 2 else relay.Shape.thin()
    asyncio.run(main(seconds, arguments[1] if len(arguments) > 1 else "mixed", shape))
