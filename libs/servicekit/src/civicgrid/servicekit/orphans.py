"""Children that die with their parent, so a killed supervisor leaves nothing running.

Linux's PR_SET_PDEATHSIG: the kernel sends the child a signal when the thread that forked it
exits. Fork from the main thread only (a pool thread may exit while the parent lives on).
"""

from __future__ import annotations

import ctypes
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for subprocess, or None where the platform has no such thing."""
    return _terminate_with_parent if sys.platform == "linux" else None
