"""A timer firing decided on the folded clocks (no history load): appended expecting the folded
sequence, and taken the full way whenever the fold cannot decide or has gone stale."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry

from civicgrid.city.workcalendar import build_calendar
from civicgrid.events.store import History, StoredEvent
from civicgrid.events.timers import TimerFiring
from civicgrid.sla.domain.clocks import Clocks
from civicgrid.sla.domain.decide import default_notify_unit, walk
from civicgrid.sla.handlers import SlaPorts, when_timer_fired
from civicgrid.sla.metrics import SlaMetrics
from tests.support.events.memory_store import InMemoryStore
from tests.support.sla import GRID_A, FixedPolicies, RecordingTimers, Script, policy

CALENDAR = build_calendar("Asia/Shanghai", "chinese-calendar")
POLICY = policy(warnings=())
T0 = datetime(2026, 6, 2, 2, 0, tzinfo=UTC)


class Notifier:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.sent.append(subject)


class CountingStore(InMemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, incident_id: str, *, at_least: int = 0) -> History:
        self.loads += 1
        return await super().load(incident_id, at_least=at_least)


class Fold:
    """The read model's fence, as a test sets it."""

    def __init__(self, version: int, clocks: Clocks) -> None:
        self.offered: tuple[int, Clocks] | None = (version, clocks)
        self.told: list[tuple[int, list[int]]] = []

    def fence(self, incident_id: str) -> tuple[int, Clocks] | None:
        return self.offered

    def appended(self, incident_id: str, after: int, stored: Sequence[StoredEvent]) -> None:
        self.told.append((after, [each.sequence for each in stored]))


def _world() -> tuple[CountingStore, Script, Clocks, int]:
    store = CountingStore()
    script = Script(T0)
    history = [script.reported(), script.assigned(GRID_A)]
    history += walk(script.incident_id, history, POLICY, CALENDAR.due).missing
    for event in history:
        store.add(event)
    clocks = walk(script.incident_id, history, POLICY, CALENDAR.due).clocks
    return store, script, clocks, len(history)


def _ports(store: InMemoryStore, fold: Fold, notifier: Notifier, now: datetime) -> SlaPorts:
    return SlaPorts(
        store=store,
        policies=FixedPolicies(POLICY),
        calendar=CALENDAR,
        timers=RecordingTimers(),
        notifier=notifier,
        metrics=SlaMetrics.create(CollectorRegistry()),
        notify_unit=default_notify_unit,
        now=lambda: now,
        folded=fold,
    )


def _breach(script: Script, clocks: Clocks) -> TimerFiring:
    resolve = clocks.by_name["resolve"]
    return TimerFiring(
        incident_id=script.incident_id,
        clock="resolve",
        stage="breach",
        clock_version=resolve.version,
        fire_at=resolve.due_at,
        correlation_id="corr",
    )


def _fences(ports: SlaPorts) -> dict[str, float]:
    return {
        fence: ports.metrics.firing_fences.labels(fence)._value.get()
        for fence in ("fold", "history")
    }


def _stored_types(store: InMemoryStore) -> list[str]:
    return [stored.event.event_type for _, stored in store.stored]


async def test_a_firing_on_a_current_fold_appends_without_loading_the_history() -> None:
    store, script, clocks, version = _world()
    fold, notifier = Fold(version, clocks), Notifier()
    firing = _breach(script, clocks)
    ports = _ports(store, fold, notifier, firing.fire_at)
    settled = await when_timer_fired(firing, ports)
    assert [e.event_type for e in settled.written] == ["sla_breached"]
    assert store.loads == 0
    assert fold.told == [(version, [version + 1])]
    assert settled.clocks.by_name["resolve"].breached
    assert notifier.sent == [f"notify.grid.{GRID_A.id}"]
    assert _fences(ports) == {"fold": 1.0, "history": 0.0}
    # Stored under the firing's cause, like the full path: a redelivery finds it applied.
    again = await when_timer_fired(
        firing, _ports(store, Fold(version, clocks), notifier, firing.fire_at)
    )
    assert again.written == ()
    assert _stored_types(store).count("sla_breached") == 1


async def test_a_fold_behind_the_history_loses_the_race_and_the_history_decides() -> None:
    store, script, clocks, version = _world()
    # The unit resolved the incident just before the deadline; the fold has not seen it yet.
    store.add(script.at(60).resolved(GRID_A))
    fold = Fold(version, clocks)
    firing = _breach(script, clocks)
    ports = _ports(store, fold, Notifier(), firing.fire_at)
    settled = await when_timer_fired(firing, ports)
    assert store.loads >= 1
    assert fold.told == []
    assert "sla_breached" not in _stored_types(store)
    # The full way stored what the resolve owed (accept cancelled, resolve met), no breach.
    assert [(e.event_type, getattr(e, "clock", "")) for e in settled.written] == [
        ("sla_clock_stopped", "accept"),
        ("sla_clock_stopped", "resolve"),
    ]
    assert _fences(ports) == {"fold": 0.0, "history": 1.0}


async def test_anything_but_fire_now_on_the_fold_is_decided_on_the_history() -> None:
    store, script, clocks, version = _world()
    fold = Fold(version, clocks)
    firing = _breach(script, clocks)
    early = firing.fire_at.replace(year=firing.fire_at.year - 1)
    ports = _ports(store, fold, Notifier(), early)
    settled = await when_timer_fired(firing, ports)
    assert settled.judged is not None and settled.judged.verdict == "early"
    assert store.loads >= 1
    assert _fences(ports) == {"fold": 0.0, "history": 1.0}


async def test_no_fold_offered_or_no_correlation_id_takes_the_full_way() -> None:
    store, script, clocks, version = _world()
    fold = Fold(version, clocks)
    fold.offered = None
    firing = _breach(script, clocks)
    ports = _ports(store, fold, Notifier(), firing.fire_at)
    assert [e.event_type for e in (await when_timer_fired(firing, ports)).written] == [
        "sla_breached"
    ]
    assert _fences(ports) == {"fold": 0.0, "history": 1.0}

    store, script, clocks, version = _world()
    fold = Fold(version, clocks)
    firing = _breach(script, clocks).model_copy(update={"correlation_id": ""})
    ports = _ports(store, fold, Notifier(), firing.fire_at)
    assert [e.event_type for e in (await when_timer_fired(firing, ports)).written] == [
        "sla_breached"
    ]
    assert fold.told == []
    assert _fences(ports) == {"fold": 0.0, "history": 1.0}
