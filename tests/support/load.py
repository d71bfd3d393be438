"""Reports through intake's native API at a steady rate, each with its own Idempotency-Key,
retried until intake answers: what a channel's client does while intake or NATS is down."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from shapely.geometry import Point

from civicgrid.city import City, default_config_dir, load_city

RETRY_PAUSE_S = 0.2  # a client's back-off between attempts, not a wait for a condition
GIVE_UP_AFTER_S = 90.0
# A 4xx other than these says the report itself is wrong: retrying would not help.
REFUSALS = frozenset(range(400, 500)) - {408, 409, 425, 429}


def shipped_city() -> City:
    return load_city(default_config_dir())


def report_bodies(city: City, count: int, seed: int) -> list[dict[str, Any]]:
    """Mixed matters at random points inside random grids of the city."""
    rng = random.Random(seed)
    matters = [m for m in city.matters if not any(a.required for a in m.attributes)]
    bodies = []
    for index in range(count):
        grid = rng.choice(city.grids)
        min_lon, min_lat, max_lon, max_lat = grid.geometry.bounds
        while True:
            lon, lat = rng.uniform(min_lon, max_lon), rng.uniform(min_lat, max_lat)
            if grid.geometry.contains(Point(lon, lat)):
                break
        bodies.append(
            {
                "channel": "citizen_app",
                "category": rng.choice(matters).code,
                "location": {"lon": round(lon, 6), "lat": round(lat, 6)},
                "description": f"chaos report {index}",
            }
        )
    return bodies


@dataclass
class Load:
    """``count`` reports at ``rate`` per second, spread over ``intake_urls`` (replicas)."""

    intake_urls: list[str]
    api_key: str
    bodies: list[dict[str, Any]]
    rate: float = 25.0
    run_id: str = "chaos"
    receipts: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> incident id
    retries: int = 0
    refused: list[str] = field(default_factory=list)
    sent: int = 0  # reports dispatched: all the bodies, unless stopped early
    _stopping: bool = False

    def stop(self) -> None:
        """Send no further report; those already sent still finish (retries included)."""
        self._stopping = True

    @property
    def accepted(self) -> int:
        return len(self.receipts)

    def key(self, index: int) -> str:
        return f"{self.run_id}-{index}"

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=5, headers={"X-API-Key": self.api_key}) as http:
            started = time.monotonic()
            sending = []
            for index, body in enumerate(self.bodies):
                # Open loop: report i leaves at i/rate whatever became of the earlier ones.
                due = started + index / self.rate
                if (delay := due - time.monotonic()) > 0:
                    await asyncio.sleep(delay)
                if self._stopping:
                    break
                self.sent += 1
                sending.append(asyncio.create_task(self._send(http, index, body)))
            await asyncio.gather(*sending)

    async def _send(self, http: httpx.AsyncClient, index: int, body: dict[str, Any]) -> None:
        key = self.key(index)
        deadline = time.monotonic() + GIVE_UP_AFTER_S
        attempt = 0
        while time.monotonic() < deadline:
            url = self.intake_urls[(index + attempt) % len(self.intake_urls)]
            attempt += 1
            try:
                response = await http.post(
                    f"{url}/api/v1/reports", json=body, headers={"Idempotency-Key": key}
                )
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code in (200, 201):
                self.receipts[key] = response.json()["incident_id"]
                return
            if response is not None and response.status_code in REFUSALS:
                self.refused.append(f"{key}: {response.status_code} {response.text}")
                return
            self.retries += 1
            await asyncio.sleep(RETRY_PAUSE_S)
        self.refused.append(f"{key}: intake never took it within {GIVE_UP_AFTER_S}s")
