"""``civicgrid report`` and ``civicgrid reporting rebuild``: the reporting service's API from
a terminal. The figures are the API's, never recomputed here."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, TextIO

import httpx

DEFAULT_URL = "http://127.0.0.1:8084"
REBUILD_POLL_S = 0.5
# The same variable the service reads (civicgrid.reporting.admin_auth).
ADMIN_TOKEN_ENV = "CIVICGRID_REPORTING_ADMIN_TOKEN"

COLUMNS: tuple[tuple[str, str], ...] = (
    ("key", "community"),
    ("name", "name 名称"),
    ("reported", "reported 受理"),
    ("open", "open 在办"),
    ("overdue", "overdue 超期"),
    ("headline", "local 属地办结 (≥90%)"),
    ("accept_on_time", "accepted on time 及时签收"),
    ("resolve_on_time", "resolved on time 按时办结"),
    ("satisfied", "satisfied 满意"),
    ("escalations", "escalations 督办"),
)


class ReportError(Exception):
    pass


def fetch_table(url: str, start: str | None, end: str | None, fmt: str) -> httpx.Response:
    params = {"from": start, "to": end, "format": "csv" if fmt == "csv" else "json"}
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/api/v1/stats/communities",
            params={k: v for k, v in params.items() if v},
            timeout=30,
        )
    except httpx.HTTPError as exc:
        raise ReportError(f"cannot reach the reporting service at {url}: {exc}") from exc
    if response.status_code != 200:
        raise ReportError(f"reporting answered {response.status_code}: {_detail(response)}")
    return response


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))
    except ValueError:
        return response.text


def _cell(value: Any) -> str:
    if isinstance(value, dict):
        if not value["denominator"]:
            return "-"
        ratio = value["numerator"] / value["denominator"]
        return f"{ratio:6.1%} {value['numerator']}/{value['denominator']}"
    return "" if value is None else str(value)


def _width(text: str) -> int:
    # CJK characters take two columns in a terminal.
    return sum(2 if ord(ch) > 0x2E80 else 1 for ch in text)


def render_table(body: dict[str, Any], out: TextIO) -> None:
    rows = [[_cell(row.get(key)) for key, _ in COLUMNS] for row in body["rows"]]
    headers = [title for _, title in COLUMNS]
    widths = [max(_width(t) for t in [h, *(r[i] for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c + " " * (w - _width(c)) for c, w in zip(cells, widths, strict=True))

    period = f"{body.get('from') or 'start'} .. {body.get('to') or 'now'}"
    out.write(f"per-community figures 社区统计, {period}\n")
    out.write(line(headers).rstrip() + "\n")
    out.write(line(["-" * w for w in widths]).rstrip() + "\n")
    for cells in rows:
        out.write(line(cells).rstrip() + "\n")


def report(url: str, start: str | None, end: str | None, fmt: str, out: TextIO) -> int:
    try:
        response = fetch_table(url, start, end, fmt)
    except ReportError as exc:
        print(f"civicgrid report: {exc}", file=sys.stderr)
        return 1
    if fmt == "csv":
        out.write(response.text)
    elif fmt == "json":
        out.write(json.dumps(response.json(), ensure_ascii=False, indent=2) + "\n")
    else:
        render_table(response.json(), out)
    return 0


def rebuild(url: str, wait: bool, timeout_s: float, out: TextIO) -> int:
    base = url.rstrip("/")
    try:
        # The service's admin token, where it has one (on loopback, none is needed).
        token = os.environ.get(ADMIN_TOKEN_ENV, "").strip()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = httpx.post(f"{base}/api/v1/admin/rebuild", headers=headers, timeout=30)
        if response.status_code != 202:
            print(f"civicgrid reporting rebuild: {_detail(response)}", file=sys.stderr)
            return 1
        generation = response.json()["building"]
        out.write(f"building read model generation {generation} beside the live one\n")
        deadline = time.monotonic() + timeout_s
        while wait and time.monotonic() < deadline:
            status = httpx.get(f"{base}/api/v1/status", timeout=10).json()
            if status["generation"] == generation:
                out.write(f"switched to generation {generation} at sequence {status['position']}\n")
                return 0
            building = status.get("rebuild", {})
            out.write(f"  at {building.get('position', 0)}, {building.get('lag', '?')} behind\n")
            time.sleep(REBUILD_POLL_S)
    except httpx.HTTPError as exc:
        print(f"civicgrid reporting rebuild: cannot reach {base}: {exc}", file=sys.stderr)
        return 1
    if wait:
        print("civicgrid reporting rebuild: not switched before the timeout", file=sys.stderr)
        return 1
    return 0
