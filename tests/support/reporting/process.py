"""The reporting service as a real process, for tests that kill it or talk to it over TCP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from civicgrid.servicekit.natsserver import free_port


class ReportingProcess:
    def __init__(self, nats_url: str, tmp_path: Path, database_url: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "CIVICGRID_NATS_URL": nats_url,
            "CIVICGRID_REPORTING_PORT": str(self.port),
            "CIVICGRID_REPORTING_DB": database_url,
            "CIVICGRID_DATA_DIR": str(tmp_path),
            "CIVICGRID_LOG_LEVEL": "WARNING",
        }
        self.log = tmp_path / "reporting.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "civicgrid.reporting"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)

    async def get(self, path: str, **params: Any) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                return await client.get(f"http://127.0.0.1:{self.port}{path}", params=params)
        except httpx.TransportError:
            return None
