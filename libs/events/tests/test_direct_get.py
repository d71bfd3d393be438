"""An answer counts only when it is a snapshot that reaches the reader's own write."""

from __future__ import annotations

from civicgrid.events.direct_get import RawMessage, reaches


def message(sequence: int) -> RawMessage:
    return RawMessage(sequence, {}, b"")


def test_an_answer_reaches_a_sequence_by_its_position_or_by_a_message_that_far_on() -> None:
    assert reaches([], None, 0)
    assert reaches([message(3)], 9, 9)
    assert reaches([message(9)], None, 9)
    assert not reaches([message(3)], 8, 9)
    assert not reaches([message(3)], None, 9)
    # "Nothing matches" from a replica that has not applied the reader's own write yet.
    assert not reaches([], None, 9)
