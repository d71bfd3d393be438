"""Where the running platform keeps its data: `civicgrid up` records its data dir and NATS port
in a small file in the user's runtime directory, so `civicgrid policy` run from another
directory finds the embedded server's admin credentials without being told."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Running:
    data_dir: Path
    nats_port: int


def record_path() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / f"civicgrid-{os.getuid()}-running.json"


def record(data_dir: Path, nats_port: int) -> None:
    path = record_path()
    document = {"data_dir": str(data_dir.resolve()), "nats_port": nats_port, "pid": os.getpid()}
    path.write_text(json.dumps(document), encoding="utf-8")


def forget() -> None:
    """Only this process's record: another `up` may have started since."""
    path = record_path()
    if _pid(path) == os.getpid():
        path.unlink(missing_ok=True)


def recorded() -> Running | None:
    """The data dir of a platform that is still running, if one recorded itself."""
    path = record_path()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        pid = int(document["pid"])
        os.kill(pid, 0)  # still running? (signal 0 only checks)
        return Running(Path(document["data_dir"]), int(document["nats_port"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _pid(path: Path) -> int | None:
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
