"""Runs a scenario against a running platform through its public doors only: intake's HTTP
(native API and Open311) and NATS request/reply for reports and commands, and an ordered read of
``incident.>`` for what happened. Nothing here imports a service.

Each ``assigned`` event starts the assigned unit's plan for that assignment (``Scenario.handling``);
a later assignment of the same incident (a return, a reopen, the whistle) supersedes it. A
command that intake refuses (409: the incident moved on meanwhile) ends that plan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import DeliverPolicy

from civicgrid.city import Matter
from civicgrid.cli.simulate.scenario import PlannedReport, Scenario, Step
from civicgrid.cli.simulate.tally import Tally
from civicgrid.events.incident_events import Assigned
from civicgrid.events.models import load_event_json

# Which door each channel comes through: the contact centre's and the police's systems, the
# sensor and video platforms talk NATS; patrol and citizen apps post HTTP.
NATS_CHANNELS = frozenset({"hotline_12345", "police_110", "iot_sensor", "video_ai"})
QUIET_S = 3.0  # no new event for this long: the platform has settled


@dataclass(frozen=True)
class Target:
    intake_url: str
    nats_url: str
    api_key: str


@dataclass(frozen=True)
class Run:
    per_day: float
    speed: float
    duration_s: float  # simulated seconds of reports
    start_hour: float = 8.0
    settle: bool = False  # close every open incident at the end, so the figures are final
    concurrency: int = 32


@dataclass
class Progress:
    planned: int = 0
    sent: int = 0
    created: int = 0
    merged_replies: int = 0
    refused_reports: int = 0
    commands: int = 0
    refused_commands: int = 0
    simulated_s: float = 0.0
    phase: str = "running"


@dataclass
class _Incident:
    report_index: int
    matter: str
    assignment_no: int = 0
    plan: asyncio.Task[None] | None = None


@dataclass
class Simulation:
    scenario: Scenario
    target: Target
    run: Run
    run_token: str
    on_progress: Callable[[Progress, Tally], None] = lambda progress, tally: None
    progress: Progress = field(default_factory=Progress)
    tally: Tally = field(default_factory=Tally)
    _incidents: dict[str, _Incident] = field(default_factory=dict)
    _waiting: dict[str, list[Assigned]] = field(default_factory=dict)
    _last_event_at: float = 0.0
    refusals: dict[str, int] = field(default_factory=dict)  # what was refused, how often

    async def execute(self) -> dict[str, Any]:
        reports = self.scenario.reports(self.run.per_day, self.run.duration_s, self.run.start_hour)
        self.progress.planned = len(reports)
        nc = await nats.connect(self.target.nats_url, name="civicgrid-simulate")
        limits = httpx.Limits(max_connections=self.run.concurrency)
        self._gate = asyncio.Semaphore(self.run.concurrency)
        try:
            async with httpx.AsyncClient(
                base_url=self.target.intake_url, timeout=30, limits=limits
            ) as http:
                self._nc, self._http = nc, http
                subscription = await nc.jetstream().subscribe(
                    "incident.>",
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.NEW,
                    cb=self._on_event,
                )
                try:
                    self._started = time.monotonic()
                    await self._send_all(reports)
                    await self._wait_for_plans()
                    if self.run.settle:
                        self.progress.phase = "settling"
                        await self._settle()
                    await self._quiet()
                finally:
                    for incident in self._incidents.values():
                        if incident.plan is not None:
                            incident.plan.cancel()
                    with contextlib.suppress(NatsError):
                        await subscription.unsubscribe()
        finally:
            await nc.drain()
        self.progress.phase = "done"
        self._report_progress()
        return {**self.progress_summary(), **self.tally.summary()}

    def progress_summary(self) -> dict[str, Any]:
        p = self.progress
        return {
            "sent": p.sent,
            "refused_reports": p.refused_reports,
            "commands": p.commands,
            "refused_commands": p.refused_commands,
            "simulated_hours": round(p.simulated_s / 3600, 2),
            "refusals": dict(sorted(self.refusals.items())),
        }

    def _refused(self, what: str) -> None:
        self.refusals[what] = self.refusals.get(what, 0) + 1

    def _wall(self, simulated_s: float) -> float:
        return self._started + simulated_s / self.run.speed

    def _report_progress(self) -> None:
        self.progress.simulated_s = min(
            (time.monotonic() - self._started) * self.run.speed, self.run.duration_s
        )
        self.on_progress(self.progress, self.tally)

    # --- reports -------------------------------------------------------------------------

    async def _send_all(self, reports: list[PlannedReport]) -> None:
        sending: set[asyncio.Task[None]] = set()
        for report in reports:
            delay = self._wall(report.at_s) - time.monotonic()
            while delay > 0:
                self._report_progress()
                await asyncio.sleep(min(delay, 0.5))
                delay = self._wall(report.at_s) - time.monotonic()
            task = asyncio.create_task(self._send(report))
            sending.add(task)
            task.add_done_callback(sending.discard)
        while time.monotonic() < self._wall(self.run.duration_s):
            self._report_progress()
            await asyncio.sleep(0.5)
        if sending:
            await asyncio.gather(*sending)

    async def _send(self, report: PlannedReport) -> None:
        async with self._gate:
            try:
                incident_id, outcome = await self._post_report(report)
            except (httpx.HTTPError, NatsError, ValueError) as exc:
                self._refused(f"report: {_reason(exc)}")
                self.progress.refused_reports += 1
                return
            finally:
                self.progress.sent += 1
        if outcome == "created":
            self.progress.created += 1
            self._incidents[incident_id] = _Incident(report.index, report.matter)
            for assigned in self._waiting.pop(incident_id, []):
                self._start_plan(assigned)
        else:
            self.progress.merged_replies += 1

    async def _post_report(self, report: PlannedReport) -> tuple[str, str]:
        matter = self.scenario.matters[report.matter]
        ref = f"{self.run_token}-{report.index}"
        if report.via_open311:
            form: dict[str, Any] = {
                "api_key": self.target.api_key,
                "service_code": report.matter,
                "lat": f"{report.lat:.6f}",
                "long": f"{report.lon:.6f}",
                "description": matter.name,
            }
            for code, answer in _answers(matter, report.index).items():
                form[f"attribute[{code}]"] = str(answer)
            response = await self._http.post("/open311/v2/requests.json", data=form)
            response.raise_for_status()
            body = response.json()[0]
            outcome = "created" if response.status_code == 201 else "merged"
            return body["service_request_id"], outcome
        payload: dict[str, Any] = {
            "channel": report.channel,
            "category": report.matter,
            "description": f"{matter.name} ({matter.keywords[0]})",
            "location": {"lon": report.lon, "lat": report.lat},
            "attributes": _answers(matter, report.index),
            **_channel_fields(report, ref),
        }
        if report.channel in NATS_CHANNELS:
            reply = await self._nc.request(
                f"intake.report.{report.channel}",
                json.dumps(payload).encode(),
                timeout=30,
                headers={"X-API-Key": self.target.api_key},
            )
            answer = json.loads(reply.data)
            if not answer.get("ok"):
                raise ValueError(f"intake refused the report: {answer.get('error')}")
            return answer["incident_id"], answer["outcome"]
        response = await self._http.post(
            "/api/v1/reports", json=payload, headers={"X-API-Key": self.target.api_key}
        )
        response.raise_for_status()
        body = response.json()
        return body["incident_id"], body["outcome"]

    # --- what happened -------------------------------------------------------------------

    async def _on_event(self, msg: Msg) -> None:
        self._last_event_at = time.monotonic()
        try:
            event = load_event_json(msg.data)
        except ValueError:
            return  # not an event this client understands; reporting will say so
        self.tally.add(event, msg.metadata.sequence.stream)
        if isinstance(event, Assigned):
            if event.incident_id in self._incidents:
                self._start_plan(event)
            elif self.progress.phase == "running":
                # The reply to our report may still be on its way: routing can be quicker.
                self._waiting.setdefault(event.incident_id, []).append(event)

    def _start_plan(self, assigned: Assigned) -> None:
        incident = self._incidents[assigned.incident_id]
        if assigned.assignment_no <= incident.assignment_no or self.progress.phase != "running":
            return
        incident.assignment_no = assigned.assignment_no
        if incident.plan is not None:
            incident.plan.cancel()
        steps = self.scenario.handling(
            incident.report_index, assigned.assignment_no, incident.matter, assigned.on_site
        )
        incident.plan = asyncio.create_task(self._follow(assigned, steps))

    async def _follow(self, assigned: Assigned, steps: list[Step]) -> None:
        began = time.monotonic()
        unit = assigned.lead_unit.model_dump(mode="json")
        for step in steps:
            due = began + step.after_s / self.run.speed
            if due > self._wall(self.run.duration_s):
                return  # beyond the end of the run: left as the day left it
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not await self._command(assigned.incident_id, step, unit, assigned):
                return

    async def _command(
        self, incident_id: str, step: Step, unit: dict[str, Any], assigned: Assigned
    ) -> bool:
        body: dict[str, Any]
        match step.command:
            case "accept" | "resume":
                body = {"unit": unit}
            case "arrive":
                body = {"unit": unit}
            case "return":
                body = {"unit": unit, "reason_code": step.detail["reason"], "note": "不属于本单位"}
            case "suspend":
                body = {"unit": unit, "reason": "等待群众提供补充材料"}
            case "resolve":
                body = {"unit": unit, "resolution": "已现场处置完毕"}
            case "callback":
                body = {"satisfied": step.detail["satisfied"], "rating": step.detail["rating"]}
            case _:
                body = {}
        self.progress.commands += 1
        async with self._gate:
            if step.command in ("callback", "close"):
                # The citizen's callback and the close come from the hotline's own system.
                return await self._http_command(incident_id, step.command, body)
            return await self._nats_command(incident_id, step.command, body)

    async def _http_command(self, incident_id: str, command: str, body: dict[str, Any]) -> bool:
        try:
            response = await self._http.post(
                f"/api/v1/incidents/{incident_id}/{command}",
                json=body,
                headers={"X-API-Key": self.target.api_key},
            )
        except httpx.HTTPError as exc:
            self._refused(f"{command}: {_reason(exc)}")
            self.progress.refused_commands += 1
            return False
        if response.is_success:
            return True
        self._refused(f"{command}: HTTP {response.status_code}")
        self.progress.refused_commands += 1
        return False

    async def _nats_command(self, incident_id: str, command: str, body: dict[str, Any]) -> bool:
        try:
            reply = await self._nc.request(
                f"intake.command.{command}",
                json.dumps({**body, "incident_id": incident_id}).encode(),
                timeout=30,
                headers={"X-API-Key": self.target.api_key},
            )
        except NatsError as exc:
            self._refused(f"{command}: {_reason(exc)}")
            self.progress.refused_commands += 1
            return False
        answer = json.loads(reply.data)
        if answer.get("ok"):
            return True
        self._refused(f"{command}: {answer.get('error', {}).get('status')}")
        self.progress.refused_commands += 1
        return False

    # --- the end -------------------------------------------------------------------------

    async def _wait_for_plans(self) -> None:
        plans = [i.plan for i in self._incidents.values() if i.plan is not None]
        self.progress.phase = "finishing"
        if plans:
            await asyncio.gather(*plans, return_exceptions=True)

    async def _settle(self, within_s: float = 120.0) -> None:
        """Close every incident of this run that is still open: resolved ones as done, the
        others by the command centre, so no clock is left running and the figures stop moving."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            open_ids = [
                incident_id
                for incident_id in self._incidents
                if (seen := self.tally.incidents.get(incident_id)) is not None and not seen.closed
            ]
            if not open_ids:
                return
            await asyncio.gather(*(self._close(incident_id) for incident_id in open_ids))
            self._report_progress()
            await asyncio.sleep(1.0)
        raise TimeoutError(f"incidents still open after {within_s:.0f}s of settling")

    async def _close(self, incident_id: str) -> None:
        async with self._gate:
            response = await self._http.get(
                f"/api/v1/incidents/{incident_id}", headers={"X-API-Key": self.target.api_key}
            )
            if not response.is_success:
                return
            stage = response.json()["state"]["stage"]
            if stage == "closed":
                return
            body: dict[str, Any] = {}
            if stage != "resolved":
                centre = self.scenario.city.command_centre
                body = {
                    "unit": {"kind": "command_centre", "id": centre.id},
                    "reason": "模拟结束 (simulation ended)",
                }
        await self._http_command(incident_id, "close", body)

    async def _quiet(self, within_s: float = 60.0) -> None:
        """Wait until the stream has been still for a moment (timers, reactions)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if time.monotonic() - self._last_event_at >= QUIET_S:
                return
            self._report_progress()
            await asyncio.sleep(0.5)


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ if not isinstance(exc, ValueError) else str(exc)[:200]


def _answers(matter: Matter, index: int) -> dict[str, Any]:
    """Answers to the matter's required questions, as a caller that read the definition would."""
    answers: dict[str, Any] = {}
    for attribute in matter.attributes:
        if not attribute.required:
            continue
        match attribute.datatype:
            case "number":
                answers[attribute.code] = 1 + index % 9
            case "singlevaluelist":
                answers[attribute.code] = attribute.values[index % len(attribute.values)].key
            case "multivaluelist":
                answers[attribute.code] = [attribute.values[0].key]
            case "datetime":
                answers[attribute.code] = "2026-01-01T08:00:00+08:00"
            case _:
                answers[attribute.code] = "见描述"
    return answers


def _channel_fields(report: PlannedReport, ref: str) -> dict[str, Any]:
    match report.channel:
        case "hotline_12345":
            return {"external_ref": f"12345-{ref}", "operator_id": f"op-{report.index % 40:02d}"}
        case "police_110":
            return {"external_ref": f"110-{ref}", "police_station": "龙港派出所"}
        case "iot_sensor":
            return {
                "device_id": f"sensor-{report.grid_id}-{report.index % 7}",
                "reading": 1.0 + (report.index % 10) / 10,
                "threshold": 1.0,
                "external_ref": f"alarm-{ref}",
            }
        case "video_ai":
            return {
                "camera_id": f"cam-{report.grid_id}-{report.index % 5}",
                "detection_type": report.matter.split(".", 1)[-1],
                "confidence": 0.8 + (report.index % 20) / 100,
                "external_ref": f"det-{ref}",
            }
        case "grid_patrol":
            return {"worker_id": f"worker-{report.grid_id}", "grid_id": report.grid_id}
        case _:
            return {"app_user_id": f"app-{report.index % 997}"}
