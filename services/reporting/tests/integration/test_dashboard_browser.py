"""The dashboard in headless Chromium: the page's figures equal the API's, a click on the map
opens a community with its grids, new incidents show up while the page is open, and a
screenshot is kept as a test artifact (CIVICGRID_TEST_ARTIFACTS, default ./test-artifacts)."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from nats.js import JetStreamContext

from civicgrid.events import streams, wire
from civicgrid.events.incident_events import HandlingLevel
from civicgrid.servicekit.natsserver import EmbeddedNats
from tests.support.events.waiting import eventually
from tests.support.reporting.lives import Life
from tests.support.reporting.process import ReportingProcess

playwright_api = pytest.importorskip(
    "playwright.async_api", reason="playwright is not installed (pip install -e '.[dev]')"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: run tools/system-deps.sh (apt-get install chromium)"
)
ARTIFACTS = Path(os.environ.get("CIVICGRID_TEST_ARTIFACTS", "test-artifacts"))
START = datetime.now(UTC) - timedelta(hours=3)


def percent(figure: dict[str, int]) -> str:
    if not figure["denominator"]:
        return "–"
    return f"{figure['numerator'] / figure['denominator'] * 100:.1f}%"


async def publish(js: JetStreamContext, lives: list[Life]) -> int:
    last = 0
    for life in lives:
        for event in life.events:
            ack = await js.publish(
                wire.event_subject(event), wire.encode(event), stream=streams.INCIDENTS
            )
            last = ack.seq
    return last


def some_lives(community: str, count: int, department_every: int = 4) -> list[Life]:
    lives = []
    for n in range(count):
        level = HandlingLevel.DEPARTMENT if n % department_every == 0 else HandlingLevel.GRID
        life = Life(
            f"d{uuid.uuid4().hex[:10]}",
            START,
            community=community,
            grid=f"{community}-g00{1 + n % 3}",
        )
        life.report().assign(1, level).clock(1, "accept", 31).accept(5 + n * 3)
        life.met(5 + n * 3, "accept")
        if n % 3:
            life.resolve(60).close(90)
        lives.append(life)
    return lives


@pytest.fixture(scope="module", autouse=True)
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def reporting_process(nats_server: EmbeddedNats, tmp_path: Path) -> Iterator[ReportingProcess]:
    process = ReportingProcess(
        nats_server.client_url, tmp_path, f"sqlite:///{tmp_path / 'reporting.sqlite'}"
    )
    yield process
    process.stop()


@pytest_asyncio.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        await launched.close()


async def test_the_dashboard_shows_the_apis_figures_map_and_a_communitys_grids(
    js: JetStreamContext, reporting_process: ReportingProcess, browser: Any
) -> None:
    last = await publish(js, some_lives("c01", 12) + some_lives("c05", 9, 2))
    reporting_process.start()

    async def api(path: str, **params: Any) -> Any:
        response = await reporting_process.get(path, **params)
        return response.json() if response is not None and response.status_code == 200 else None

    await eventually(
        lambda: api("/api/v1/stats/communities", min_sequence=last), within_s=30, what="ready"
    )
    page = await browser.new_page(viewport={"width": 1600, "height": 1300})
    await page.goto(f"http://127.0.0.1:{reporting_process.port}/?refresh=300")
    await page.wait_for_selector("#community-table tbody tr[data-community='c01']")
    assert await page.locator("#map path[data-community]").count() == 26

    # Figures read off the page equal the API's, row by row.
    await page.wait_for_function(f"Number(document.body.dataset.position) >= {last}")
    body = await api("/api/v1/stats/communities")
    for row in (r for r in body["rows"] if r["key"] is not None):
        cells = page.locator(f"#community-table tr[data-community='{row['key']}'] td")
        texts = dict(
            zip(
                await cells.evaluate_all("cells => cells.map(c => c.dataset.figure)"),
                await cells.all_inner_texts(),
                strict=True,
            )
        )
        assert texts["reported"] == str(row["reported"]), row["key"]
        assert texts["open"] == str(row["open"]), row["key"]
        assert texts["overdue"] == str(row["overdue"]), row["key"]
        assert texts["headline"].startswith(percent(row["headline"])), row["key"]
        assert texts["accept_on_time"] == percent(row["accept_on_time"]), row["key"]
    city = (await api("/api/v1/stats/city"))["rows"][0]
    assert await page.inner_text("#city-headline") == percent(city["headline"])

    # Coloured by the headline ratio; switching to overdue repaints and changes the legend.
    c05 = next(r for r in body["rows"] if r["key"] == "c05")
    fill = await page.get_attribute("#map path[data-community='c05']", "fill")
    ratio = c05["headline"]["numerator"] / c05["headline"]["denominator"]
    assert fill == ("#3fb27f" if ratio >= 0.9 else "#e3c04d" if ratio >= 0.8 else "#e8853a"
                    if ratio >= 0.7 else "#d9534f")  # fmt: skip
    assert "≥ 90%" in await page.inner_text("#legend")

    # A click on the map opens the community, its figures and its grids.
    await page.locator("#map path[data-community='c01']").click()
    await page.wait_for_selector("#detail h2[data-community='c01']")
    one = await api("/api/v1/stats/communities/c01")
    grid_rows = page.locator("#grid-table tr[data-grid]")
    await eventually(lambda: _count_is(grid_rows, len(one["grids"])), what="grid table filled")
    for grid in one["grids"]:
        cells = await page.locator(
            f"#grid-table tr[data-grid='{grid['key']}'] td"
        ).all_inner_texts()
        assert cells[1] == str(grid["reported"])
    assert await page.locator("#grid-map path[data-grid]").count() == len(one["grid_ids"])
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    # Live: a new incident in c01 appears without reloading the page.
    before = int(
        await page.inner_text(
            "#community-table tr[data-community='c01'] td[data-figure='reported']"
        )
    )
    await publish(js, some_lives("c01", 1))

    async def shown() -> bool:
        text = await page.inner_text(
            "#community-table tr[data-community='c01'] td[data-figure='reported']"
        )
        return int(text) == before + 1

    await eventually(shown, within_s=15, what="new incident on the page")
    await page.locator("#mode-overdue").click()
    assert "无超期" in await page.inner_text("#legend")
    await page.screenshot(path=str(ARTIFACTS / "dashboard-overdue.png"), full_page=True)


async def _count_is(locator: Any, expected: int) -> bool:
    return bool(await locator.count() == expected)
