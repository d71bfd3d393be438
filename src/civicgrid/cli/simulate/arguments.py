"""``civicgrid simulate``'s options, apart from the command: building the ``civicgrid`` parser
must not import the simulator (rich, the city's geometry), or every command pays for it."""

from __future__ import annotations

import argparse
import os
from typing import Any

EPILOG = """\
With `--speed 60` a simulated day passes in 24 minutes. For breaches and the escalation ladder
to happen in that time, run the platform with the time-scaled service levels:
`civicgrid up --config config/longgang-fast --data-dir data-fast`. The same --seed sends the
same reports and makes handlers and citizens take the same decisions."""


def add_parser(commands: Any) -> None:
    env = os.environ.get
    sim = commands.add_parser(
        "simulate",
        help="a simulated city day against the running platform (HTTP and NATS only)",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--per-day", type=float, default=1200.0, help="reports per simulated day")
    sim.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    sim.add_argument("--days", type=float, default=1.0, help="simulated days of reports")
    sim.add_argument("--minutes", type=float, default=None, help="stop after N wall minutes")
    sim.add_argument("--seed", type=int, default=1, help="the same seed repeats a run")
    sim.add_argument("--start-hour", type=float, default=8.0, help="local hour the day starts")
    sim.add_argument(
        "--settle",
        action="store_true",
        help="at the end close every incident still open, so the figures are final",
    )
    sim.add_argument("--json", action="store_true", help="print the summary as JSON")
    sim.add_argument(
        "--intake",
        default=env("CIVICGRID_INTAKE_URL")
        or f"http://127.0.0.1:{env('CIVICGRID_INTAKE_PORT', '8081')}",
        help="intake's base URL [CIVICGRID_INTAKE_URL]",
    )
    sim.add_argument(
        "--nats",
        default=env("CIVICGRID_NATS_URL"),
        help="NATS URL [CIVICGRID_NATS_URL; default: the embedded server, as `external`]",
    )
    sim.add_argument("--data-dir", default=env("CIVICGRID_DATA_DIR"))
    sim.add_argument("--nats-port", type=int, default=None)
    sim.add_argument(
        "--api-key",
        default=env("CIVICGRID_API_KEY"),
        help="intake API key [CIVICGRID_API_KEY; default: the embedded platform's dev key]",
    )
    sim.add_argument(
        "--config",
        default=env("CIVICGRID_SIM_CONFIG"),
        help="the city to draw reports from, with its unscaled service levels"
        " [CIVICGRID_SIM_CONFIG; default: the shipped city]",
    )
