"""A fresh platform per chaos test: its own nats-server(s), users and service processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.processes import Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    created = Platform.create(tmp_path)
    created.nats.start()
    try:
        created.provision()
        yield created
    finally:
        created.stop()
