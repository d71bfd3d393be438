"""Helpers shared by the suite's process-level tests (chaos, cluster): NATS servers, service
processes, a load generator and the ledger that checks what the stream holds afterwards."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout's root: the working directory that makes ``tests.support`` importable in a child
process started with ``python -m tests.support...``."""
