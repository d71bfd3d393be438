"""End-to-end throughput: Open311 POSTs (wrk, 16 connections) until every event they cause is
projected, through the four services (``civicgrid up --nats``, shipped city, clocks armed),
beside the no-logic relay of the same shape (``bench.relay``), on one fresh nats-server.

"Done" is the moment the projector's position reaches the stream's last sequence once the
stream has stopped growing: every report, assignment and clock written is projected. The figure
is reports accepted (2xx) over the time from the first POST to done.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import nats
from nats.aio.client import Client as NatsClient

from bench import relay
from bench.city import platform_env
from bench.harness import Figure
from civicgrid.city import GeoIndex, default_config_dir, load_city
from civicgrid.events import streams
from civicgrid.servicekit.natsserver import EmbeddedNats, free_port

CONNECTIONS = 16
API_KEY = "dev-bench-end-to-end"
STILL_S = 1.5  # the stream has not grown for this long: the flow is over


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _bodies(count: int, same_matter: str | None, seed: int = 5) -> list[str]:
    city = load_city(default_config_dir())
    index = GeoIndex(city)
    rng = random.Random(seed)
    codes = sorted(m.code for m in city.matters if not any(a.required for a in m.attributes))
    bodies = []
    for _ in range(count):
        lon, lat = index.random_point(rng)
        code = same_matter or rng.choice(codes)
        bodies.append(
            f"api_key={API_KEY}&service_code={code}&lat={lat:.6f}&long={lon:.6f}&description=bench"
        )
    return bodies


def _wrk_script(bodies: list[str], directory: Path) -> Path:
    lua = directory / "post.lua"
    listed = ",\n".join(json.dumps(body) for body in bodies)
    lua.write_text(
        "local bodies = {\n" + listed + "\n}\n"
        "local n = 0\n"
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
        "request = function()\n"
        "  n = n + 1\n"
        "  return wrk.format(nil, nil, nil, bodies[(n % #bodies) + 1])\n"
        "end\n"
    )
    return lua


def _wrk(url: str, seconds: float, script: Path) -> tuple[int, int]:
    """(requests, non-2xx) from one wrk run."""
    result = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{max(1, round(seconds))}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    total = re.search(r"(\d+) requests in", result.stdout)
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if total is None:
        raise RuntimeError(f"wrk said: {result.stdout}{result.stderr}")
    return int(total.group(1)), int(failed.group(1)) if failed else 0


async def _until_projected(
    client: NatsClient, stream: str, position: Callable[[], Awaitable[int]], within_s: float
) -> float:
    """The monotonic time at which the projector reached the stream's settled end."""
    js = client.jetstream()
    deadline = time.monotonic() + within_s
    last, still_since, reached_at = -1, time.monotonic(), 0.0
    while time.monotonic() < deadline:
        end = (await js.stream_info(stream)).state.last_seq
        now = time.monotonic()
        if end != last:
            last, still_since, reached_at = end, now, 0.0
        if not reached_at and await position() >= end:
            reached_at = now
        if reached_at and now - still_since >= STILL_S:
            return reached_at
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{stream} not projected within {within_s:.0f}s")


def relay_position(database: Path) -> Callable[[], Awaitable[int]]:
    """How far the relay's projector has stored (0 until its table exists)."""

    async def position() -> int:
        try:
            with sqlite3.connect(database) as db:
                return int(db.execute("SELECT sequence FROM position").fetchone()[0])
        except (sqlite3.Error, TypeError):
            return 0

    return position


def reporting_position(port: int) -> Callable[[], Awaitable[int]]:
    """How far reporting's projector has stored, as its status API says."""
    status = f"http://127.0.0.1:{port}/api/v1/status"

    async def position() -> int:
        async with httpx.AsyncClient(timeout=5) as http:
            return int((await http.get(status)).json()["position"])

    return position


def _wait_http(url: str, within_s: float) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not answering within {within_s:.0f}s")


def _spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _relay_run(
    server: EmbeddedNats, seconds: float, script: Path, directory: Path, shape: relay.Shape
) -> Figure:
    """One relay run on its own streams (deleted after), so runs of two shapes don't mix."""
    client = await nats.connect(server.client_url, name="bench-e2e-relay")
    await relay.ensure_streams(client)
    port, url, database = free_port(), server.client_url, directory / f"relay-{id(shape)}.sqlite"
    processes = [
        _spawn(["-m", "bench.relay", *args])
        for args in relay.parts(port, url, str(database), shape).values()
    ]
    try:
        _wait_http(f"http://127.0.0.1:{port}/", 30)

        started = time.monotonic()
        total, failed = await asyncio.to_thread(
            _wrk, f"http://127.0.0.1:{port}/open311/v2/requests.json", seconds, script
        )
        done = await _until_projected(client, relay.STREAM, relay_position(database), 300)
        kind = "thin" if shape == relay.Shape.thin() else "the platform's shape"
        return Figure(f"relay, {kind}: Open311 POST -> projected (no logic)", total - failed,
                      done - started, "reports/s")  # fmt: skip
    finally:
        _stop(processes)
        js = client.jetstream()
        for stream in (relay.STREAM, relay.CLAIMS, relay.TIMERS):
            await js.delete_stream(stream)
        await client.close()


async def _counts(client: NatsClient) -> dict[str, int]:
    """What the platform has written so far: events by kind, claims, timer schedules."""
    js = client.jetstream()
    counts = {"reported": 0, "merged": 0, "routed": 0, "clocked": 0}
    subjects = (await js.stream_info(streams.INCIDENTS, subjects_filter="incident.>")).state
    for subject, count in (subjects.subjects or {}).items():
        kind = subject.rsplit(".", 1)[-1]
        if kind in ("reported", "merged"):
            counts[kind] += count
        else:
            counts["clocked" if kind.startswith("sla_") else "routed"] += count
    claims = await js.stream_info(f"KV_{streams.INTAKE_DUPLICATES_BUCKET}")
    counts["claims"] = claims.state.last_seq
    counts["schedules"] = (await js.stream_info(streams.SLA_TIMERS)).state.last_seq
    return counts


def _shape_of(before: dict[str, int], after: dict[str, int], accepted: int) -> relay.Shape:
    per = {key: (after[key] - before[key]) / max(1, accepted) for key in after}
    opened = per["reported"] / max(1e-9, per["reported"] + per["merged"])
    return relay.Shape(reported=opened, claims=per["claims"], routed=per["routed"],
                       clocked=per["clocked"], schedules=per["schedules"],
                       extra_readers=True)  # fmt: skip


async def _platform_run(
    server: EmbeddedNats,
    client: NatsClient,
    seconds: float,
    scripts: dict[str, Path],
    directory: Path,
) -> tuple[list[Figure], list[relay.Shape]]:
    ports = {s: free_port() for s in ("intake", "routing", "sla", "reporting")}
    env = platform_env(ports, API_KEY, directory)
    up = _spawn(
        ["-m", "civicgrid.cli", "up", "--nats", server.client_url, "--data-dir",
         str(directory / "data")],
        env,
    )  # fmt: skip
    figures: list[Figure] = []
    shapes: list[relay.Shape] = []
    try:
        for service, port in ports.items():
            _wait_http(f"http://127.0.0.1:{port}/readyz", 120)
            del service
        position = reporting_position(ports["reporting"])
        for name, script in scripts.items():
            before = await _counts(client)
            started = time.monotonic()
            total, failed = await asyncio.to_thread(
                _wrk,
                f"http://127.0.0.1:{ports['intake']}/open311/v2/requests.json",
                seconds,
                script,
            )
            done = await _until_projected(client, streams.INCIDENTS, position, 600)
            figures.append(Figure(name, total - failed, done - started, "reports/s"))
            shapes.append(_shape_of(before, await _counts(client), total - failed))
    finally:
        _stop([up])
    return figures, shapes


@dataclass(frozen=True)
class Measured:
    """Reports/s: the platform (mixed matters, and one matter: a storm), the relay of the mixed
    run's shape, and the thin relay (one publish per hop, one reader), all on one server."""

    mixed: Figure
    storm: Figure
    shaped_relay: Figure
    thin_relay: Figure
    shape: relay.Shape


async def measure(seconds: float) -> Measured:
    with tempfile.TemporaryDirectory(prefix="civicgrid-e2e-") as name:
        directory = Path(name)
        mixed = _wrk_script(_bodies(2000, None), directory)
        (directory / "same").mkdir()
        same = _wrk_script(_bodies(2000, "water.waterlogging"), directory / "same")
        server = EmbeddedNats(data_dir=directory / "nats", port=free_port())
        server.start()
        client = await nats.connect(server.client_url, name="bench-e2e")
        try:
            # The platform first: the relay then copies the shape the mixed run had.
            (ours_mixed, ours_storm), (shape, _) = await _platform_run(
                server,
                client,
                seconds,
                {
                    "platform: Open311 POST -> projected, mixed matters": mixed,
                    "platform: Open311 POST -> projected, one matter (a storm)": same,
                },
                directory,
            )
            shaped = await _relay_run(server, seconds, mixed, directory, shape)
            thin = await _relay_run(server, seconds, mixed, directory, relay.Shape.thin())
        finally:
            await client.close()
            server.stop()
    return Measured(ours_mixed, ours_storm, shaped, thin, shape)
