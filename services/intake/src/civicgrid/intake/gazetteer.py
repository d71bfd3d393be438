"""The city's gazetteer: the places an ``address_string`` may name when a report has no
lat/long (communities, grids and named places such as the schools and hospitals that have an
exclusive grid), each with a point inside it.

A name matches exactly (ignoring case and spaces) or by being contained in the address
("江滨社区菜场门口" names 江滨社区); the longest contained name wins, so a grid beats the
community whose name it repeats. Nothing else is geocoded: a street address is refused with
the closest names, so the citizen can say it again or send a point.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Place:
    name: str
    kind: str  # "community", "grid" or "place"
    area_id: str
    lon: float
    lat: float


def _normal(text: str) -> str:
    return _SPACE.sub("", text).casefold()


class Gazetteer:
    def __init__(self, places: Sequence[Place] = ()) -> None:
        self._places = list(places)
        self._by_key: dict[str, Place] = {}
        for place in self._places:
            self._by_key.setdefault(_normal(place.name), place)
            self._by_key.setdefault(_normal(place.area_id), place)
        # Longest first: the most specific name contained in an address wins.
        self._names = sorted(
            ((_normal(p.name), p) for p in self._places), key=lambda item: -len(item[0])
        )

    def __len__(self) -> int:
        return len(self._places)

    def resolve(self, address: str) -> Place | None:
        key = _normal(address)
        if not key:
            return None
        exact = self._by_key.get(key)
        if exact is not None:
            return exact
        return next((place for name, place in self._names if len(name) > 1 and name in key), None)

    def close_matches(self, address: str, limit: int = 5) -> list[str]:
        names = {_normal(p.name): p.name for p in self._places}
        found = difflib.get_close_matches(_normal(address), list(names), n=limit, cutoff=0.5)
        return [names[name] for name in found]
