"""Runs one sla service as its own process for tests that kill it (``kill -9``).

    python -m tests.support.sla_process <nats url> <http port> <policy bucket> <suffix>

The durables are ``sla-clocks-<suffix>`` and ``sla-timers-<suffix>`` (starting at new messages,
so other tests' incidents in the shared streams do not reach it).
"""

from __future__ import annotations

import os
import sys

from civicgrid.servicekit.service import run
from civicgrid.servicekit.settings import ServiceSettings
from civicgrid.sla.app import build
from tests.support.sla import fresh_durables


def main(argv: list[str]) -> None:
    url, port, bucket, suffix = argv
    settings = ServiceSettings(
        service="sla",
        nats_url=url,
        http_host="127.0.0.1",
        http_port=int(port),
        config_dir=None,
        log_level=os.environ.get("CIVICGRID_LOG_LEVEL", "INFO"),
        instance=f"sla-process-{suffix}",
        stream_replicas=1,
    )
    clocks, fired = fresh_durables(suffix)
    run(
        build(
            settings,
            clocks_consumer=clocks,
            timers_consumer=fired,
            policy_bucket=bucket,
            policy_refresh_s=0.0,
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
