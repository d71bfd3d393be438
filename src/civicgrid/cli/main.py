"""The ``civicgrid`` command. Every option also reads an environment variable; none prompts."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from civicgrid.cli.credentials import load_existing
from civicgrid.cli.up import UpOptions, default_ports, provision, run_up


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
        help="use this NATS instead of starting one [CIVICGRID_NATS_URL]",
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

    provision = commands.add_parser(
        "provision",
        help="create or update the streams and buckets on an existing NATS (admin identity)",
    )
    provision.add_argument(
        "--nats",
        default=env("CIVICGRID_NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS URL with an identity allowed to manage streams [CIVICGRID_NATS_URL]",
    )
    provision.add_argument(
        "--replicas",
        type=int,
        default=int(env("CIVICGRID_STREAM_REPLICAS", "1")),
        help="stream replicas: 1 for a single server, 3 for a cluster [CIVICGRID_STREAM_REPLICAS]",
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
        help="NATS URL [CIVICGRID_NATS_URL; default: the embedded server, as admin]",
    )
    policy.add_argument("--data-dir", default=env("CIVICGRID_DATA_DIR", "data"))
    policy.add_argument("--nats-port", type=int, default=int(env("CIVICGRID_NATS_PORT", "4222")))
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
    return parser


def _policy(args: argparse.Namespace) -> int:
    from civicgrid.routing.policy import main as policy_main

    url = args.nats
    if url is None:
        # The embedded server's admin identity, as `civicgrid up` left it in the data dir.
        credentials = load_existing(Path(args.data_dir))
        url = credentials.url_for("admin", "127.0.0.1", args.nats_port)
    argv = [args.action, *([args.file] if args.file else []), "--nats", url]
    if args.config:
        argv += ["--config", args.config]
    return policy_main(argv)


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "up":
        options = UpOptions(
            data_dir=Path(args.data_dir).resolve(),
            config_dir=Path(args.config) if args.config else None,
            nats_url=args.nats,
            nats_port=args.nats_port,
            http_host=args.host,
            ports=default_ports(),
            dev_api_key=os.environ.get("CIVICGRID_DEV_API_KEY"),
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
    if args.command == "provision":
        asyncio.run(provision(args.nats, replicas=args.replicas))
        print(f"streams and buckets provisioned with {args.replicas} replica(s)")
