"""Ports for servers a test is about to start: never the same one twice in a process.

A 3-node test cluster draws nine ports (client, route, monitor) before any node listens, so
"nothing listens there now" alone let two of them be the same: once, a node's monitor port
was another node's client port, and the node exited at start ("address already in use").
"""

from __future__ import annotations

import random

import pytest

from civicgrid.servicekit.natsserver import free_port


def test_ports_drawn_before_anything_listens_on_them_are_all_different(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = free_port()
    # The worst luck: every random draw is the port already handed out.
    monkeypatch.setattr(random, "choice", lambda _: first)
    drawn = [free_port() for _ in range(3)]
    assert first not in drawn
    assert len(set(drawn)) == 3
