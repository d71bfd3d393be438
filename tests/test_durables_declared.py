"""Every durable a service consumes from is declared in ``civicgrid.events.durables``.

The NATS grants protect exactly the declared durables (the owner may manage them, everyone else
is denied them by name); a durable a composition root attaches without declaring it would be
unprotected, or refused to its own service.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import pytest

from civicgrid.events import durables
from civicgrid.events.ownership import SERVICES
from civicgrid.servicekit.service import Service
from civicgrid.servicekit.settings import ServiceSettings


def consumed_durables(service: str) -> set[durables.Durable]:
    app = importlib.import_module(f"civicgrid.{service}.app")
    build: Callable[[ServiceSettings], Service] = app.build
    built = build(ServiceSettings.from_env(service, env={}))
    return {durables.Durable(c.spec.stream, c.spec.durable) for c in built.consumers}


@pytest.mark.parametrize("service", SERVICES)
def test_each_durable_a_service_consumes_is_declared_as_its_own(service: str) -> None:
    undeclared = consumed_durables(service) - set(durables.OWNED[service])
    assert not undeclared, f"{service} consumes from durables it does not declare: {undeclared}"


def test_no_two_declarations_name_the_same_durable() -> None:
    everything = durables.all_durables()
    assert len(set(everything)) == len(everything)
    assert set(durables.OWNED) == set(SERVICES)
