"""Schedules in a live embedded server: runs fire on their own, and the routes
`GET /workflows/{id}/schedule`, `POST /workflows/{id}/pause` and `/resume`.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.test_openapi import conforms

SCHEDULE_WAIT = 20.0
"""Seconds a test waits for scheduled runs (a loaded machine; only bounds a failure)."""


def workflow_body(*triggers: dict[str, Any], name: str = "scheduled") -> dict[str, Any]:
    return {
        "name": name,
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "say",
                "type": "transformer",
                "config": {"transform_type": "compose", "mapping": {"greeting": "'hi ' ~ who"}},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "say"}, {"from": "say", "to": "end"}],
        "triggers": list(triggers),
    }


def slot_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def scheduled_runs(client: httpx.Client, workflow_id: str) -> list[dict[str, Any]]:
    response = client.get(
        "/workflows/executions",
        params={"workflow_id": workflow_id, "trigger": "schedule", "limit": 1000},
    )
    assert response.status_code == 200, response.text
    runs: list[dict[str, Any]] = response.json()
    return sorted(runs, key=lambda run: run["trigger"]["slot"])


@pytest.fixture
def document(client: httpx.Client) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/openapi.json").json()
    return body


def test_every_second_fires_consecutive_slots_once_each(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    created = client.post(
        "/workflows/",
        json=workflow_body({"type": "schedule", "every_seconds": 1, "inputs": {"who": "cron"}}),
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    saved_at = datetime.fromisoformat(created.json()["updated_at"])

    def four_finished() -> bool:
        runs = scheduled_runs(client, workflow_id)
        return sum(bool(run["status"] == "success") for run in runs) >= 4

    wait_until(four_finished, within=SCHEDULE_WAIT, what="four scheduled runs finished")
    # Stop it before counting, so no run is created while we read.
    assert client.delete(f"/workflows/{workflow_id}").status_code == 204
    runs = scheduled_runs(client, workflow_id)
    slots = [slot_time(run["trigger"]["slot"]) for run in runs]
    assert len(set(slots)) == len(slots), "a slot fired twice"
    assert [b - a for a, b in itertools.pairwise(slots)] == [timedelta(seconds=1)] * (
        len(slots) - 1
    ), "a slot was skipped"
    assert slots[0] > saved_at - timedelta(seconds=1), "a slot before the save fired"
    finished = [run for run in runs if run["status"] == "success"]
    assert len(finished) >= 4
    assert all("hi cron" in str(run["result"]) for run in finished), finished[0]["result"]
    for run in runs:
        assert run["trigger"]["type"] == "schedule"
        assert run["trigger"]["key"] == runs[0]["trigger"]["key"]
        assert run["variables"] == {"who": "cron"}


def test_schedule_route_shows_each_schedule_and_its_next_five_times(
    client: httpx.Client, document: dict[str, Any]
) -> None:
    body = workflow_body(
        {"type": "schedule", "cron": "30 2 * * *", "timezone": "Europe/Berlin", "id": "nightly"},
        {"type": "webhook", "path": "sched-route-hook", "auth": {"type": "none"}},
        {"type": "schedule", "every_seconds": 3600, "end_at": "2999-01-01T02:00:00Z"},
    )
    workflow_id = client.post("/workflows/", json=body).json()["id"]
    response = client.get(f"/workflows/{workflow_id}/schedule")
    assert response.status_code == 200, response.text
    conforms(document, "get", "/workflows/{workflow_id}/schedule", response)
    nightly, hourly = response.json()
    assert (nightly["index"], nightly["key"], hourly["index"]) == (0, "nightly", 2)
    assert nightly["spec"]["cron"] == "30 2 * * *"
    assert nightly["spec"]["catch_up"] == "latest"  # defaults filled in
    assert nightly["timezone"] == "Europe/Berlin"
    assert nightly["paused"] is False and nightly["last_slot"] is None
    assert len(nightly["next"]) == 5
    for time in nightly["next"]:
        local = datetime.fromisoformat(time["local"])
        assert (local.hour, local.minute) in ((2, 30), (3, 0))  # 03:00 on spring-forward day
        assert local == datetime.fromisoformat(time["utc"])
        assert local.utcoffset() in (timedelta(hours=1), timedelta(hours=2))
    utc_times = [datetime.fromisoformat(time["utc"]) for time in hourly["next"]]
    assert [b - a for a, b in itertools.pairwise(utc_times)] == [timedelta(hours=1)] * 4
    assert utc_times[0] > datetime.now(UTC) - timedelta(seconds=1)
    assert hourly["timezone"] == "UTC" and hourly["next"][0]["local"].endswith("+00:00")

    without = client.post("/workflows/", json=workflow_body()).json()["id"]
    assert client.get(f"/workflows/{without}/schedule").json() == []
    missing = client.get("/workflows/no-such-workflow/schedule")
    assert missing.status_code == 404
    conforms(document, "get", "/workflows/{workflow_id}/schedule", missing)


def test_pause_stops_the_schedule_in_the_running_scheduler_and_resume_restarts_it(
    server: LiveServer, client: httpx.Client, document: dict[str, Any]
) -> None:
    created = client.post(
        "/workflows/", json=workflow_body({"type": "schedule", "every_seconds": 1})
    ).json()
    workflow_id = created["id"]
    wait_until(
        lambda: scheduled_runs(client, workflow_id), within=SCHEDULE_WAIT, what="a first run"
    )
    scheduler = server.app.scheduler
    assert scheduler is not None

    paused = client.post(f"/workflows/{workflow_id}/pause")
    assert paused.status_code == 200, paused.text
    conforms(document, "post", "/workflows/{workflow_id}/pause", paused)
    assert paused.json()["status"] == "paused"
    assert paused.json()["version"] == created["version"] + 1
    # The scheduler hears of it (a control message), not at its next refresh.
    wait_until(
        lambda: [entry[2] for entry in scheduler.schedules if entry[0] == workflow_id] == [None],
        what="the scheduler saw the pause",
    )
    fired_before = {run["trigger"]["slot"] for run in scheduled_runs(client, workflow_id)}
    assert (
        client.post(f"/workflows/{workflow_id}/pause").json()["version"] == paused.json()["version"]
    )
    shown = client.get(f"/workflows/{workflow_id}/schedule").json()
    assert shown[0]["paused"] is True
    assert shown[0]["last_slot"] == max(fired_before)

    # Manual runs still start while paused.
    manual = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"who": "me"}})
    assert manual.status_code == 200 and manual.json()["status"] == "success"

    resumed = client.post(f"/workflows/{workflow_id}/resume")
    assert resumed.status_code == 200
    conforms(document, "post", "/workflows/{workflow_id}/resume", resumed)
    assert resumed.json()["status"] == "active"
    resumed_at = datetime.now(UTC)

    def fired_since_resume() -> bool:
        slots = {run["trigger"]["slot"] for run in scheduled_runs(client, workflow_id)}
        return bool(slots - fired_before)

    wait_until(fired_since_resume, within=SCHEDULE_WAIT, what="a run after the resume")
    client.delete(f"/workflows/{workflow_id}")
    slots = sorted(slot_time(run["trigger"]["slot"]) for run in scheduled_runs(client, workflow_id))
    new = [slot for slot in slots if slot > slot_time(max(fired_before))]
    # Nothing of the pause was caught up: every new slot came after the resume.
    assert new and all(slot > resumed_at - timedelta(seconds=1) for slot in new)

    audit = client.get("/audit", params={"target": f"workflow:{workflow_id}"}).json()
    actions = [entry["action"] for entry in audit["entries"]]
    assert actions.count("workflow.pause") == 1 and actions.count("workflow.resume") == 1

    for route in ("pause", "resume"):
        missing = client.post(f"/workflows/no-such-workflow/{route}")
        assert missing.status_code == 404
        conforms(document, "post", f"/workflows/{{workflow_id}}/{route}", missing)
