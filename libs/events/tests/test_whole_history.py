"""A history read is one request when the stored expectations prove nothing is missing, and
reads every subject in full whenever they do not."""

from __future__ import annotations

from civicgrid.events import subjects, wire
from civicgrid.events.direct_get import RawMessage
from civicgrid.events.store import EventStore, is_whole_history
from tests.support.events.factories import accepted, reported

INCIDENT = subjects.incident_events("I1")


def stored(sequence: int, *, after: int | None = None, in_batch: int = 0) -> RawMessage:
    headers = {}
    if after is not None:
        headers[wire.EXPECTED_LAST_SUBJECT_SEQUENCE] = str(after)
        headers[wire.EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT] = INCIDENT
    if in_batch:
        headers[wire.BATCH_SEQUENCE] = str(in_batch)
    return RawMessage(sequence, headers, b"{}")


def test_a_chain_of_expectations_down_to_nothing_is_the_whole_history() -> None:
    assert is_whole_history([], INCIDENT)
    assert is_whole_history([stored(4, after=0)], INCIDENT)
    assert is_whole_history([stored(4, after=0), stored(9, after=4)], INCIDENT)
    batch = [stored(4, after=0), stored(9, after=4, in_batch=1), stored(10, in_batch=2)]
    assert is_whole_history(batch, INCIDENT)


def test_a_gap_or_a_message_without_expectation_is_not() -> None:
    # 9 followed an event at 6 that is not among the lasts: an earlier one of some subject.
    assert not is_whole_history([stored(4, after=0), stored(9, after=6)], INCIDENT)
    assert not is_whole_history([stored(4, after=0), stored(9)], INCIDENT)
    assert not is_whole_history([stored(4, after=0), stored(10, in_batch=2)], INCIDENT)
    elsewhere = {wire.EXPECTED_LAST_SUBJECT_SEQUENCE_SUBJECT: "incident.I2.*"}
    other = RawMessage(4, {**stored(4, after=0).headers, **elsewhere}, b"")
    assert not is_whole_history([other], INCIDENT)
    # A chain that ends but leaves a message out is not trusted either.
    assert not is_whole_history([stored(2, after=0), stored(4, after=0)], INCIDENT)


async def test_histories_of_every_shape_load_whole(store: EventStore) -> None:
    first = reported()
    incident = first.incident_id
    version = (await store.append_decision([first], cause="c0", fingerprint="",
                                           expected_version=0))[-1].sequence  # fmt: skip
    once = [first]
    assert [s.event for s in (await store.load(incident)).events] == once
    batch = [accepted(incident, correlation_id="a"), accepted(incident, correlation_id="b")]
    version = (await store.append_decision(batch, cause="c1", fingerprint="",
                                           expected_version=version))[-1].sequence  # fmt: skip
    loose = accepted(incident, correlation_id="c")
    await store.append(loose, msg_id="loose", expected_version=None)
    history = await store.load(incident)
    assert [s.event.event_id for s in history.events] == [
        e.event_id for e in [*once, *batch, loose]
    ]
