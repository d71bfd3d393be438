"""The end-to-end baseline copies the platform's shape: fractional rates publish the right totals,
and a shape survives the command line between the bench and the relay's processes."""

from __future__ import annotations

import pytest

from bench.relay import Paced, Shape, parts


@pytest.mark.parametrize("rate", [0.0, 0.8, 1.0, 2.35, 4.69])
def test_paced_totals_follow_a_fractional_rate(rate: float) -> None:
    paced = Paced(rate)
    counts = [paced.next() for _ in range(1000)]
    assert abs(sum(counts) - rate * 1000) <= 1
    assert all(int(rate) <= count <= int(rate) + 1 for count in counts)


def test_a_shape_travels_as_text() -> None:
    shape = Shape(claims=0.8, routed=1.0, clocked=2.35, schedules=4.7, extra_readers=True)
    assert Shape.decode(shape.encode()) == shape


def test_hop_rates_are_per_message_read() -> None:
    shape = Shape(
        reported=0.5, claims=0.8, routed=0.5, clocked=2.0, schedules=4.0, extra_readers=True
    )
    hops = parts(1, "nats://x", "db", shape)
    assert hops["hop reported"][4:] == ["1.0", "0", "-"]
    assert hops["hop assigned"][4:] == ["4.0", "8.0", "read"]


def test_the_thin_relay_is_one_publish_per_hop_and_one_reader() -> None:
    thin = parts(1, "nats://x", "db", Shape.thin())
    assert thin["hop reported"][4:] == ["1.0", "0", "-"]
    assert thin["hop assigned"][4:] == ["1.0", "0.0", "-"]
