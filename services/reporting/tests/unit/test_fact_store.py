from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from civicgrid.events.projector import PositionMoved, ProjectedEvent
from civicgrid.reporting import fact_store
from civicgrid.reporting.fact_store import FactStore
from civicgrid.reporting.facts import IncidentFact
from civicgrid.reporting.schema import incident_facts
from tests.support.reporting.lives import Life

START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)


def numbered(*lives: Life, first: int = 1) -> list[ProjectedEvent]:
    events = [event for life in lives for event in life.events]
    return [
        ProjectedEvent(first + i, f"incident.{e.incident_id}.{e.event_type}", e)
        for i, e in enumerate(events)
    ]


def test_a_batch_and_its_position_are_stored_together(engine: Engine) -> None:
    store = FactStore(engine)
    life = Life("i1", START).report().assign(1).accept(5)
    batch = numbered(life)
    assert store.position() == 0
    assert store.apply(batch, after=0, position=3) == 1
    assert store.position() == 3
    fact = store.fact("i1")
    assert fact is not None
    assert (fact.accepted_at, fact.last_sequence) == (life.at(5), 3)
    assert fact.reported_at is not None and fact.reported_at.tzinfo is not None


def test_a_replayed_batch_changes_no_row(engine: Engine) -> None:
    store = FactStore(engine)
    batch = numbered(Life("i1", START).report().assign(1), Life("i2", START).report())
    store.apply(batch, after=0, position=3)
    before = store.fact("i1")
    # The same events again (a projector that crashed before learning its batch was stored).
    assert store.apply(batch, after=3, position=3) == 0
    assert store.fact("i1") == before
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(incident_facts)).scalar() == 2


def test_a_stale_writer_is_refused_and_nothing_is_written(engine: Engine) -> None:
    store = FactStore(engine)
    store.apply(numbered(Life("i1", START).report()), after=0, position=1)
    with pytest.raises(PositionMoved):
        store.apply(numbered(Life("i2", START).report(), first=2), after=0, position=2)
    assert store.fact("i2") is None
    assert store.position() == 1


def test_a_failure_mid_batch_leaves_neither_rows_nor_position(engine: Engine) -> None:
    store = FactStore(engine)
    good = numbered(Life("i1", START).report())
    bad = ProjectedEvent(2, "x", None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.apply([*good, bad], after=0, position=2)
    assert store.position() == 0
    assert store.fact("i1") is None


def test_any_valid_event_fits_the_row_even_an_unbounded_area_id(engine: Engine) -> None:
    # The contract bounds unit ids and categories but not a jurisdiction's area ids; a row the
    # database refused would stop the projection on that event for ever.
    long_id = "c" * 300
    life = Life("i1", START, community=long_id, grid=long_id).report().assign(1, unit_id="u1")
    store = FactStore(engine)
    store.apply(numbered(life), after=0, position=2)
    fact = store.fact("i1")
    assert fact is not None and fact.community_id == long_id


def test_replicas_applying_their_first_batches_at_once_are_ordered_not_failed(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two replicas on one new database, each at position 0, apply at the same moment. The one
    # that comes second must be told the position moved (and re-read it), not fail on a
    # duplicate checkpoint or fact row and wait out the projector's retry pause.
    a, b = FactStore(engine), FactStore(engine)
    assert (a.position(), b.position()) == (0, 0)
    both_read = threading.Barrier(2, timeout=2.0)
    real_load = fact_store._load

    def load_once_both_have_read(connection: Connection, ids: set[str]) -> dict[str, IncidentFact]:
        # Where the old code let both in: each had seen no checkpoint, so neither waited.
        with contextlib.suppress(threading.BrokenBarrierError):
            both_read.wait()
        return real_load(connection, ids)

    monkeypatch.setattr(fact_store, "_load", load_once_both_have_read)
    outcomes: dict[str, str] = {}

    def apply(name: str, store: FactStore, life: Life) -> None:
        try:
            store.apply(numbered(life), after=0, position=1)
            outcomes[name] = "applied"
        except PositionMoved:
            outcomes[name] = "position moved"
        except Exception as exc:  # the outcome under test
            outcomes[name] = f"failed: {exc!r}"[:200]

    threads = [
        threading.Thread(target=apply, args=("a", a, Life("i1", START).report())),
        threading.Thread(target=apply, args=("b", b, Life("i1", START).report())),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes.values()) == ["applied", "position moved"], outcomes
    assert a.position() == 1
