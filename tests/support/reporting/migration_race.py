"""Replicas starting at the same moment on one read model: each opens (and so migrates) it.

Processes, not threads: Alembic's ``context`` is one module-level proxy per process, and
the replicas this stands for are separate processes anyway.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier

from civicgrid.reporting.database import open_database


def _replica(urls: list[str], barrier: Barrier, errors: multiprocessing.Queue[str]) -> None:
    for url in urls:
        barrier.wait(timeout=60)  # every replica opens the same fresh database at once
        try:
            open_database(url).dispose()
        except Exception as exc:
            errors.put(f"{url}: {exc!r}")


def start_together(urls: list[str], replicas: int) -> list[str]:
    """Open each of ``urls`` from ``replicas`` processes at once; the errors they met."""
    spawn = multiprocessing.get_context("spawn")  # no fork of a threaded test process
    barrier = spawn.Barrier(replicas)
    errors: multiprocessing.Queue[str] = spawn.Queue()
    processes = [
        spawn.Process(target=_replica, args=(urls, barrier, errors)) for _ in range(replicas)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=90)
    found = []
    while not errors.empty():
        found.append(errors.get())
    for process in processes:
        if process.exitcode != 0:
            process.kill()
            found.append(f"a replica ended with exit code {process.exitcode}")
    return found
