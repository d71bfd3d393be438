"""``civicgrid report`` and ``civicgrid reporting rebuild`` against a running reporting process."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nats.js import JetStreamContext

from civicgrid.events import streams, wire
from civicgrid.reporting.admin_auth import ADMIN_TOKEN_ENV
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.waiting import eventually
from tests.support.reporting.lives import Life
from tests.support.reporting.process import ReportingProcess

START = datetime.now(UTC) - timedelta(hours=2)


@pytest.fixture
def reporting_process(nats_server: EmbeddedNats, tmp_path: Path) -> Iterator[ReportingProcess]:
    process = ReportingProcess(
        nats_server.client_url, tmp_path, f"sqlite:///{tmp_path / 'reporting.sqlite'}"
    )
    yield process
    process.stop()


def civicgrid(
    url: str, *args: str, admin_token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ADMIN_TOKEN_ENV}
    if admin_token is not None:
        env[ADMIN_TOKEN_ENV] = admin_token
    return subprocess.run(
        [sys.executable, "-m", "civicgrid.cli", *args, "--url", url],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


async def test_report_prints_the_apis_figures_as_table_csv_and_json(
    js: JetStreamContext, reporting_process: ReportingProcess
) -> None:
    community = f"q{uuid.uuid4().hex[:8]}"
    last = 0
    for n in range(5):
        life = Life(f"q{uuid.uuid4().hex[:10]}", START, community=community).report().assign(1)
        if n < 3:
            life.resolve(30).close(40)
        for event in life.events:
            last = (
                await js.publish(
                    wire.event_subject(event), wire.encode(event), stream=streams.INCIDENTS
                )
            ).seq
    reporting_process.start()

    async def api() -> dict[str, Any] | None:
        response = await reporting_process.get("/api/v1/stats/communities", min_sequence=last)
        return response.json() if response is not None and response.status_code == 200 else None

    body = await eventually(api, within_s=30, what="reporting caught up")
    from_api = next(row for row in body["rows"] if row["key"] == community)
    url = f"http://127.0.0.1:{reporting_process.port}"

    as_json = civicgrid(url, "report", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    from_cli = next(r for r in json.loads(as_json.stdout)["rows"] if r["key"] == community)
    assert from_cli == from_api

    as_csv = civicgrid(url, "report", "--format", "csv")
    row = next(r for r in csv.DictReader(io.StringIO(as_csv.stdout)) if r["key"] == community)
    assert (row["reported"], row["open"], row["closed_numerator"]) == ("5", "2", "3")

    table = civicgrid(url, "report")
    line = next(line for line in table.stdout.splitlines() if line.startswith(community))
    assert line.split()[1:4] == [
        community,
        "5",
        "2",
    ]  # name (the id: not in the city), reported, open
    assert "100.0% 3/3" in line  # all resolved locally

    bad = civicgrid(url, "report", "--from", "yesterday")
    assert bad.returncode == 1
    assert "from must be a date" in bad.stderr

    rebuilt = civicgrid(url, "reporting", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "switched to generation 2" in rebuilt.stdout
    after = await api()
    assert after is not None
    assert next(r for r in after["rows"] if r["key"] == community) == from_api


async def test_rebuild_sends_the_admin_token_a_service_with_one_wants(
    reporting_process: ReportingProcess,
) -> None:
    reporting_process.env[ADMIN_TOKEN_ENV] = "cli-test-token"
    reporting_process.start()

    async def up() -> bool:
        response = await reporting_process.get("/api/v1/status")
        return response is not None and response.status_code == 200

    await eventually(up, within_s=30, what="reporting answering")
    url = f"http://127.0.0.1:{reporting_process.port}"
    refused = civicgrid(url, "reporting", "rebuild", "--no-wait")
    assert refused.returncode == 1
    assert "Bearer" in refused.stderr, refused.stderr
    wrong = civicgrid(url, "reporting", "rebuild", "--no-wait", admin_token="not-it")
    assert wrong.returncode == 1
    assert "wrong admin token" in wrong.stderr, wrong.stderr
    rebuilt = civicgrid(url, "reporting", "rebuild", admin_token="cli-test-token")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "switched to generation 2" in rebuilt.stdout


def test_report_says_plainly_when_the_service_is_not_there() -> None:
    result = civicgrid("http://127.0.0.1:9", "report")
    assert result.returncode == 1
    assert "cannot reach the reporting service" in result.stderr
