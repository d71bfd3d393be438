"""The ``civicgrid`` command. Every option also reads an environment variable; none prompts."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

# Only what parsing the command line needs is imported here; each command imports its own
# machinery (the services, FastAPI, the simulator: about 1.5 s) when it runs, so `civicgrid
# report` or `civicgrid dlq list` starts in a fraction of that.
from civicgrid.cli import running
from civicgrid.cli.credentials import FILE_NAME, load_existing
from civicgrid.cli.dlq_help import REPLAY_HELP
from civicgrid.cli.simulate.arguments import add_parser as add_simulate_parser
from civicgrid.servicekit.seeds import NatsSeeds, SeedsError


def _parser() -> argparse.ArgumentParser:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="civicgrid", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser(
        "up", help="run NATS (embedded unless --nats) and the four services; Ctrl-C stops"
    )
    up.add_argument(
        "--config",
        default=env("CIVICGRID_CONFIG"),
        help="city config directory [CIVICGRID_CONFIG; default: the shipped city]",
    )
    up.add_argument(
        "--data-dir",
        default=env("CIVICGRID_DATA_DIR", "data"),
        help="where the embedded NATS keeps its files, logs and credentials"
        " [CIVICGRID_DATA_DIR; default: ./data]",
    )
    up.add_argument(
        "--nats",
        default=env("CIVICGRID_NATS_URL"),
        help="use this NATS instead of starting one: a URL, or a comma-separated list of a"
        " cluster's seed URLs [CIVICGRID_NATS_URL]",
    )
    up.add_argument(
        "--nats-port",
        type=int,
        default=int(env("CIVICGRID_NATS_PORT", "4222")),
        help="port of the embedded NATS [CIVICGRID_NATS_PORT; default 4222]",
    )
    up.add_argument(
        "--host",
        default=env("CIVICGRID_HTTP_HOST", "127.0.0.1"),
        help="address the services' HTTP listens on [CIVICGRID_HTTP_HOST]",
    )
    up.add_argument(
        "--instances",
        type=int,
        choices=range(1, 10),
        metavar="N",
        default=int(env("CIVICGRID_INSTANCES", "1")),
        help="processes per service, each on its service's port + 100 * (n - 1), as replicas"
        " would run in a cluster [CIVICGRID_INSTANCES; default 1]",
    )

    provision = commands.add_parser(
        "provision",
        help="create or update the streams and buckets on an existing NATS (admin identity)",
    )
    provision.add_argument(
        "--nats",
        default=env("CIVICGRID_NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS URL (or comma-separated seed URLs) with an identity allowed to manage"
        " streams [CIVICGRID_NATS_URL]",
    )
    provision.add_argument(
        "--replicas",
        type=int,
        default=int(env("CIVICGRID_STREAM_REPLICAS", "0")) or None,
        help="stream replicas: 1 for a single server, 3 for a cluster [CIVICGRID_STREAM_REPLICAS;"
        " default: as provisioned before, else 1]",
    )

    policy = commands.add_parser(
        "policy",
        help="publish a new routing policy version, or show the current one",
    )
    policy.add_argument("action", choices=("publish", "show"))
    policy.add_argument("file", nargs="?", help="policy YAML (for publish)")
    policy.add_argument(
        "--nats",
        default=env("CIVICGRID_NATS_URL"),
        help="NATS URL or comma-separated seed URLs [CIVICGRID_NATS_URL; default: the embedded"
        " server, as admin]",
    )
    policy.add_argument(
        "--data-dir",
        default=env("CIVICGRID_DATA_DIR"),
        help="the running `civicgrid up`'s data dir [CIVICGRID_DATA_DIR; default: the one"
        " the running platform recorded, else ./data]",
    )
    policy.add_argument("--nats-port", type=int, default=None)
    policy.add_argument("--config", default=env("CIVICGRID_CONFIG"))

    reporting_url = env("CIVICGRID_REPORTING_URL", "http://127.0.0.1:8084")
    report = commands.add_parser("report", help="the per-community table, from the reporting API")
    report.add_argument("--from", dest="start", help="first local day, YYYY-MM-DD")
    report.add_argument("--to", dest="end", help="last local day (inclusive), YYYY-MM-DD")
    report.add_argument("--format", choices=("table", "csv", "json"), default="table")
    report.add_argument(
        "--url", default=reporting_url, help="reporting service [CIVICGRID_REPORTING_URL]"
    )

    reporting = commands.add_parser("reporting", help="operate the reporting read model")
    reporting.add_argument("action", choices=("rebuild",))
    reporting.add_argument("--url", default=reporting_url)
    reporting.add_argument(
        "--no-wait", action="store_true", help="start the rebuild and return at once"
    )
    reporting.add_argument("--timeout", type=float, default=3600.0)

    identity = argparse.ArgumentParser(add_help=False)
    identity.add_argument(
        "--nats",
        default=env("CIVICGRID_NATS_URL"),
        help="NATS URL or comma-separated seed URLs [CIVICGRID_NATS_URL; default: the embedded"
        " server, as admin]",
    )
    identity.add_argument(
        "--data-dir",
        default=env("CIVICGRID_DATA_DIR"),
        help="the running `civicgrid up`'s data dir [CIVICGRID_DATA_DIR; default: the one"
        " the running platform recorded, else ./data]",
    )
    identity.add_argument("--nats-port", type=int, default=None)
    dlq = commands.add_parser(
        "dlq", help="list, show and replay dead letters (what a service could not handle)"
    )
    dlq_commands = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_commands.add_parser(
        "list", parents=[identity], help="one line per dead letter, oldest first"
    )
    listing.add_argument("--service", help="only this service's letters")
    show = dlq_commands.add_parser(
        "show", parents=[identity], help="one letter in full, with its original message"
    )
    show.add_argument("sequence", type=int, help="the letter's DLQ sequence (from list)")
    replay = dlq_commands.add_parser(
        "replay",
        parents=[identity],
        help="have the consumer that gave up on a message handle it again",
        description=REPLAY_HELP,
    )
    replay.add_argument("sequence", type=int, nargs="?", help="the letter's DLQ sequence")
    replay.add_argument("--all", action="store_true", help="every letter (of --service)")
    replay.add_argument("--service", help="with --all: only this service's letters")
    add_simulate_parser(commands)
    return parser


def embedded_platform(data_dir: str | None, nats_port: int | None) -> tuple[Path, int]:
    """The data dir and port of the embedded server: as given, else as the running platform
    recorded them, else ./data and 4222; says how to point at it when nothing is there."""
    found = running.recorded()
    if data_dir is None and found is not None:
        return found.data_dir, nats_port or found.nats_port
    directory = Path(data_dir or "data")
    port = nats_port or int(os.environ.get("CIVICGRID_NATS_PORT") or "4222")
    if not (directory / FILE_NAME).exists():
        raise SystemExit(
            f"no running civicgrid found: {directory / FILE_NAME} does not exist and no running"
            " `civicgrid up` recorded its data dir. Start it with `civicgrid up` (`make run`),"
            " or pass the data dir it printed (`civicgrid is up  (data: DIR)`) with --data-dir"
            " DIR (or CIVICGRID_DATA_DIR), or a NATS URL with --nats."
        )
    return directory, port


def _admin_url(args: argparse.Namespace) -> str:
    if args.nats is not None:
        return str(args.nats)
    # The embedded server's admin identity, as `civicgrid up` left it in the data dir.
    data_dir, port = embedded_platform(args.data_dir, args.nats_port)
    return load_existing(data_dir).url_for("admin", "127.0.0.1", port)


def _policy(args: argparse.Namespace) -> int:
    from civicgrid.routing.policy import main as policy_main

    url = _admin_url(args)
    argv = [args.action, *([args.file] if args.file else []), "--nats", url]
    if args.config:
        argv += ["--config", args.config]
    return policy_main(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "up":
        from civicgrid.cli.up import UpOptions, default_ports, run_up

        if args.nats is not None:
            try:
                NatsSeeds.parse(args.nats)
            except SeedsError as exc:
                raise SystemExit(f"--nats: {exc}") from exc
        options = UpOptions(
            data_dir=Path(args.data_dir).resolve(),
            config_dir=Path(args.config) if args.config else None,
            nats_url=args.nats,
            nats_port=args.nats_port,
            http_host=args.host,
            ports=default_ports(),
            dev_api_key=os.environ.get("CIVICGRID_DEV_API_KEY"),
            instances=args.instances,
        )
        raise SystemExit(asyncio.run(run_up(options)))
    if args.command == "report":
        from civicgrid.cli.report import report

        raise SystemExit(report(args.url, args.start, args.end, args.format, sys.stdout))
    if args.command == "reporting":
        from civicgrid.cli.report import rebuild

        raise SystemExit(rebuild(args.url, not args.no_wait, args.timeout, sys.stdout))
    if args.command == "policy":
        raise SystemExit(_policy(args))
    if args.command == "dlq":
        from civicgrid.cli.dlq import main as dlq_main

        raise SystemExit(dlq_main(args, _admin_url(args)))
    if args.command == "simulate":
        from civicgrid.cli.simulate.command import main as simulate_main

        raise SystemExit(simulate_main(args))
    if args.command == "provision":
        from civicgrid.cli.up import provision

        try:
            replicas = asyncio.run(provision(args.nats, replicas=args.replicas))
        except SeedsError as exc:
            raise SystemExit(f"--nats: {exc}") from exc
        print(f"streams and buckets provisioned with {replicas} replica(s)")
