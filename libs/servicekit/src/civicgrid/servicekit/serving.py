"""Runs a ``Service`` as a process: HTTP at once, the bus in the background, and a prompt stop
on SIGTERM or SIGINT at any moment, while still connecting included.

uvicorn alone would not do: it defers a signal until its lifespan start-up is over, and a
start-up waiting for an unreachable NATS is never over. So the service's own handlers own the
signals, the start is a task that a signal cancels, and the stop has a deadline. Past it the
process exits regardless: the supervisor, or the kernel's parent-death signal when the
supervisor is gone, sends one SIGTERM and must be able to rely on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Coroutine, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
import uvicorn
import uvloop

from civicgrid.servicekit.logging import configure_logging

if TYPE_CHECKING:
    from civicgrid.servicekit.service import Service

log = structlog.get_logger("civicgrid.serving")
T = TypeVar("T")

# The graceful part of a stop (HTTP, consumers, draining the connection) gets this long ...
STOP_DEADLINE_S = 3.0
# ... and the process is gone this long after the signal, whatever it was doing.
HARD_EXIT_S = 4.0
HTTP_GRACE_S = 1
EXIT_FAILED = 1


class _HttpServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The signals are the service's (see ``serve``); uvicorn's handlers would replace them.
        yield


def run(service: Service) -> None:
    code = run_on_uvloop(serve(service))
    if code:
        raise SystemExit(code)


def run_on_uvloop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop's event loop: each message through nats-py and each HTTP
    request costs the loop less than asyncio's own (selector, transports, handles)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def serve(service: Service) -> int:
    """Serve until a signal, or until the start or the HTTP server fails; the exit code."""
    # Here, not only in ``start``: the tasks below copy this context (the service's name).
    configure_logging(service.settings.service, service.settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _on_signal, stop, signum)
    http = _HttpServer(
        uvicorn.Config(
            service.http,
            host=service.settings.http_host,
            port=service.settings.http_port,
            log_config=None,
            access_log=False,
            http="httptools",
            # The service starts below, where a signal can cancel it.
            lifespan="off",
            timeout_graceful_shutdown=HTTP_GRACE_S,
        )
    )
    serving = asyncio.create_task(http.serve(), name="http")
    starting = asyncio.create_task(service.start(), name="start")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    code = 0
    try:
        await asyncio.wait({starting, stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and not starting.exception():
            await asyncio.wait({stopping, serving}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done() and starting.exception():
            failure = starting.exception()
            log.error("service_start_failed", error=repr(failure), exc_info=failure)
            code = EXIT_FAILED
        elif serving.done() and not stop.is_set():
            log.error("http_server_ended", error=repr(serving.exception()))
            code = EXIT_FAILED
    finally:
        if not stop.is_set():
            _arm_hard_exit()
        stopping.cancel()
        await _shut_down(service, http, serving, starting)
    return code


def _on_signal(stop: asyncio.Event, signum: int) -> None:
    name = signal.Signals(signum).name
    if stop.is_set():
        log.warning("second_stop_signal_exiting_now", signal=name)
        os._exit(EXIT_FAILED)
    log.info("stop_requested", signal=name)
    stop.set()
    _arm_hard_exit()


def _arm_hard_exit() -> None:
    # A thread, not the loop: a stop that hangs may be hanging the loop.
    timer = threading.Timer(HARD_EXIT_S, _hard_exit)
    timer.daemon = True
    timer.start()


def _hard_exit() -> None:
    log.error("stop_deadline_passed_exiting", deadline_s=HARD_EXIT_S)
    os._exit(EXIT_FAILED)


async def _shut_down(
    service: Service,
    http: uvicorn.Server,
    serving: asyncio.Task[None],
    starting: asyncio.Task[None],
) -> None:
    http.should_exit = True
    if not starting.done():
        # Still connecting (or running start-up hooks): give up on it.
        starting.cancel()
        log.info("start_abandoned")
    await asyncio.gather(starting, return_exceptions=True)
    try:
        async with asyncio.timeout(STOP_DEADLINE_S):
            await asyncio.gather(serving, return_exceptions=True)
            await service.stop()
    except TimeoutError:
        log.warning("stop_incomplete", deadline_s=STOP_DEADLINE_S)
    except Exception as exc:
        log.error("stop_failed", error=repr(exc))
