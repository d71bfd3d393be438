"""Runs the services as child processes, restarts one that dies, stops them all in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from civicgrid.servicekit.orphans import die_with_parent

MAX_BACKOFF_S = 30.0
# A child that ran this long before dying counts as healthy: its next restart is immediate.
HEALTHY_RUN_S = 60.0
# A service stops within about 4 s of SIGTERM on its own (civicgrid.servicekit.serving); past
# this its process group is killed. All children get it at once, so this bounds the whole stop.
STOP_GRACE_S = 5.0


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0


@dataclass
class Supervisor:
    children: list[Child]
    on_event: Callable[[str], None]
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    async def start_all(self) -> None:
        for child in self.children:
            # A stop requested half way spawns no more (and stops those already spawned).
            if self.stopping:
                return
            await self._spawn(child)

    async def run_until_stopped(self) -> None:
        watchers = [asyncio.create_task(self._watch(child)) for child in self.children]
        await self._stopping.wait()
        await self._terminate_all()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)

    def request_stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def stopped(self) -> None:
        """Returns once a stop has been requested."""
        await self._stopping.wait()

    async def stopped_within(self, seconds: float) -> bool:
        """Waits up to ``seconds`` for a stop request; whether one came."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        return self.stopping

    async def _spawn(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = open(child.log_path, "ab")  # noqa: SIM115, ASYNC230 - brief, local, append-only
        try:
            child.process = await asyncio.create_subprocess_exec(
                *child.argv,
                env=child.env,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                # Own process group: a terminal's Ctrl-C reaches only the supervisor, which
                # then stops the children in order instead of all dying at once.
                start_new_session=True,
                # If the supervisor is killed outright, the services go with it.
                preexec_fn=die_with_parent(),
            )
        finally:
            log_file.close()
        child.started_at = time.monotonic()

    async def _watch(self, child: Child) -> None:
        backoff = 1.0
        while not self._stopping.is_set():
            assert child.process is not None
            code = await child.process.wait()
            if self._stopping.is_set():
                return
            ran_for = time.monotonic() - child.started_at
            if ran_for > HEALTHY_RUN_S:
                backoff = 1.0
            self.on_event(f"{child.name} exited with code {code}; restarting in {backoff:.0f}s")
            if await self.stopped_within(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)
            child.restarts += 1
            await self._spawn(child)

    async def stop_all(self) -> None:
        """Stop every child that runs, for callers that never ran ``run_until_stopped``."""
        self.request_stop()
        await self._terminate_all()

    async def _terminate_all(self) -> None:
        running = [c for c in self.children if c.process and c.process.returncode is None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        await asyncio.gather(*(self._await_exit(child) for child in running))

    async def _await_exit(self, child: Child) -> None:
        assert child.process is not None
        try:
            await asyncio.wait_for(child.process.wait(), timeout=STOP_GRACE_S)
        except TimeoutError:
            self.on_event(f"{child.name} did not stop in {STOP_GRACE_S:.0f}s; killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)
            await child.process.wait()


class EventPrinter:
    def __call__(self, message: str) -> None:
        # Whoever read our output may be gone (`civicgrid up | head`, a closed terminal): the
        # stop must still run to its end, nats-server included, not die on a message.
        with contextlib.suppress(OSError):
            print(f"[civicgrid] {message}", flush=True)
