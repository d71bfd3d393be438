"""``civicgrid simulate``: a day (or N days) of the shipped city against the running platform."""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from civicgrid.city import default_config_dir, load_city
from civicgrid.cli.simulate.driver import Progress as SimProgress
from civicgrid.cli.simulate.driver import Run, Simulation, Target
from civicgrid.cli.simulate.scenario import DAY_S, Scenario
from civicgrid.cli.simulate.tally import Tally


def _target(args: argparse.Namespace) -> Target:
    from civicgrid.cli.credentials import load_existing
    from civicgrid.cli.main import embedded_platform

    nats_url, api_key = args.nats, args.api_key
    if nats_url is None or api_key is None:
        data_dir, port = embedded_platform(args.data_dir, args.nats_port)
        credentials = load_existing(data_dir)
        nats_url = nats_url or credentials.url_for("external", "127.0.0.1", port)
        api_key = api_key or credentials.dev_api_key
    return Target(intake_url=args.intake, nats_url=nats_url, api_key=api_key)


def run_from_args(args: argparse.Namespace) -> Run:
    duration_s = args.days * DAY_S
    if args.minutes is not None:
        duration_s = min(duration_s, args.minutes * 60 * args.speed)
    return Run(
        per_day=args.per_day,
        speed=args.speed,
        duration_s=duration_s,
        start_hour=args.start_hour,
        settle=args.settle,
    )


def _clock(simulated_s: float, start_hour: float) -> str:
    at = timedelta(seconds=int(start_hour * 3600 + simulated_s))
    return f"day {at.days + 1} {at.seconds // 3600:02d}:{at.seconds % 3600 // 60:02d}"


def main(args: argparse.Namespace) -> int:
    config_dir = Path(args.config) if args.config else default_config_dir()
    scenario = Scenario(load_city(config_dir), seed=args.seed)
    run = run_from_args(args)
    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        disable=args.json and not console.is_terminal,
    )
    task = bar.add_task("starting", total=run.duration_s, counts="")

    def show(progress: SimProgress, tally: Tally) -> None:
        counts = (
            f"sent {progress.sent}/{progress.planned}  incidents {len(tally.incidents)}"
            f"  merged {tally.merged}  breached {tally.breaches}  escalated {tally.escalations}"
        )
        description = f"{_clock(progress.simulated_s, run.start_hour)} {progress.phase}"
        bar.update(task, completed=progress.simulated_s, description=description, counts=counts)

    simulation = Simulation(
        scenario, _target(args), run, run_token=secrets.token_hex(4), on_progress=show
    )
    with bar:
        summary = asyncio.run(simulation.execute())
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        Console().print(summary_table(summary))
    return 0


def summary_table(summary: dict[str, Any]) -> Table:
    def ratio(numerator: int, denominator: int) -> str:
        share = f"{numerator / denominator:.1%}" if denominator else "-"
        return f"{share}  ({numerator}/{denominator})"

    table = Table(title="civicgrid simulate", show_header=False)
    rows = [
        ("reports sent", str(summary["sent"])),
        ("incidents opened", str(summary["incidents"])),
        ("merged into an open incident (并单)", str(summary["merged"])),
        ("refused reports", str(summary["refused_reports"])),
        ("resolved", str(summary["resolved"])),
        ("closed", str(summary["closed"])),
        ("resolved on time", ratio(summary["resolved_on_time"], summary["resolve_judged"])),
        ("warnings", str(summary["warnings"])),
        ("breached", str(summary["breaches"])),
        ("escalated (ladder steps)", str(summary["escalations"])),
        ("returned / reopened", f"{summary['returns']} / {summary['reopens']}"),
        (
            "resolved at community level",
            ratio(summary["community_level"], summary["community_level_of"]),
        ),
        ("handler and citizen commands", f"{summary['commands']}"),
        ("simulated hours", str(summary["simulated_hours"])),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for what, count in summary["refusals"].items():
        # A 409 is a handler acting on an incident that moved on (reassigned meanwhile).
        table.add_row(f"  refused {what}", str(count))
    return table
