"""One table for a benchmark run: every row beside its raw-NATS baseline from the same run,
printed and written as JSON (``bench/results/<date>-<commit>.json``) so commits compare."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Row:
    section: str
    name: str
    value: float
    unit: str
    baseline: str | None = None  # the baseline row's name, in this table
    baseline_value: float | None = None
    higher_is_better: bool = True

    @property
    def ratio(self) -> float | None:
        """ours / baseline: above 1 is faster for rates, slower for latencies."""
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value


@dataclass
class Table:
    scale: float
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def base(self, section: str, name: str, value: float, unit: str, **kw: Any) -> Row:
        return self.add(Row(section, name, value, unit, **kw))

    def against(
        self, base: Row, section: str, name: str, value: float, unit: str | None = None
    ) -> Row:
        return self.add(
            Row(
                section,
                name,
                value,
                unit or base.unit,
                baseline=base.name,
                baseline_value=base.value,
                higher_is_better=base.higher_is_better,
            )
        )

    def render(self) -> str:
        lines = [
            f"{'':2}{'figure':<60} {'value':>12} {'unit':<10} {'baseline (same run)':>14} "
            f"{'ratio':>7}"
        ]
        section = None
        bases = {row.baseline for row in self.rows if row.baseline}
        for row in self.rows:
            if row.section != section:
                section = row.section
                lines.append(f"{section}:")
            base = f"{row.baseline_value:>14,.2f}" if row.baseline_value is not None else ""
            ratio = f"{row.ratio:6.2f}x" if row.ratio is not None else (
                "   base" if row.name in bases else ""
            )  # fmt: skip
            lines.append(
                f"  {row.name:<60} {row.value:>12,.2f} {row.unit:<10} {base:>14} {ratio:>7}"
            )
        return "\n".join(lines)

    def document(self) -> dict[str, Any]:
        return {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": commit(),
            "host": platform.node(),
            "cores": os.cpu_count(),
            "scale": self.scale,
            "rows": [{**asdict(row), "ratio": row.ratio} for row in self.rows],
        }

    def write(self, directory: Path = RESULTS) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        document = self.document()
        path = directory / f"{document['date'][:10]}-{document['commit']}.json"
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return path


def commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent,
    ).stdout.strip()
    return f"{found}-dirty" if dirty else found
