"""Children that die with their parent, so a killed supervisor leaves nothing running.

Linux's PR_SET_PDEATHSIG: the kernel sends the child a signal when the thread that forked it
exits. Fork from the main thread only (a pool thread may exit while the parent lives on).
The signal is SIGTERM, so a child must stop promptly on SIGTERM at any moment, including while
it is still starting (``civicgrid.servicekit.service.run`` does).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _terminate_with(parent: int) -> Callable[[], None]:
    def in_child() -> None:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent died between fork and prctl: no signal will come, so go now.
        if os.getppid() != parent:
            os._exit(1)

    return in_child


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for subprocess, or None where the platform has no such thing."""
    return _terminate_with(os.getpid()) if sys.platform == "linux" else None
