"""What started a run, everywhere: its `run_started` event, `{{ run.trigger }}`, the runs
lists' `trigger` filter (and its documented types), and the CLI (`runs`, `watch`,
`run`, and `validate` checking a file's triggers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from typer.testing import CliRunner, Result

from ductwork.cli import cli
from ductwork.models import RunStatus, WorkflowDefinition
from ductwork.settings import Settings
from ductwork.views import origin_text
from tests.support.engine import embedded
from tests.support.live_server import LiveServer

SCHEDULE = {"type": "schedule", "key": "s-1a2b", "slot": "2026-12-03T07:40:00+00:00"}
WEBHOOK = {"type": "webhook", "path": "new-signup", "method": "POST"}
ERROR = {
    "type": "error",
    "execution_id": "3f2a1c0e-7d4b-4c1e-9a55-0b6c2d8e9f10",
    "workflow_id": "w",
}
MANUAL = {"type": "manual"}


def echo_trigger(name: str = "origin") -> dict[str, Any]:
    """start -> end, whose result is what the template reads of `run.trigger`."""
    return {
        "name": name,
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "end", "type": "end", "config": {"output": "{{ run.trigger.type }}"}},
        ],
        "edges": [{"from": "start", "to": "end"}],
    }


def test_origin_text_names_each_kind_of_trigger() -> None:
    assert origin_text(MANUAL) == "manual"
    assert origin_text(SCHEDULE) == "schedule 2026-12-03T07:40:00Z"
    assert origin_text({**SCHEDULE, "slot": "2026-12-03T08:40:00+01:00"}) == (
        "schedule 2026-12-03T07:40:00Z"
    )
    assert origin_text(WEBHOOK) == "webhook POST /hooks/new-signup"
    assert origin_text({**WEBHOOK, "path": "/hooks/orders"}) == "webhook POST /hooks/orders"
    assert origin_text(ERROR) == "error of 3f2a1c0e…"
    assert origin_text(ERROR, short=False) == f"error of {ERROR['execution_id']}"
    assert origin_text(None) == "-"
    assert origin_text({"type": "calendar"}) == "calendar"


async def test_the_run_started_event_and_templates_carry_the_trigger(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(WorkflowDefinition.model_validate(echo_trigger()))
        for trigger in (MANUAL, SCHEDULE, WEBHOOK, ERROR):
            run, _ = await app.execute(wf.id, wait=True, trigger=trigger)
            assert run.status is RunStatus.SUCCESS, run.error
            assert run.result == trigger["type"]
            started = run.events[0]
            assert started.type == "run_started" and started.data["trigger"] == trigger
        # `ductwork run FILE` runs are started by a person: manual.
        local = await app.execute_definition(WorkflowDefinition.model_validate(echo_trigger()))
        assert local.trigger == MANUAL and local.result == "manual"


# Over HTTP and in the CLI -------------------------------------------------------------------


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(Settings(data_dir=tmp_path, sync_wait_seconds=20)) as server:
        yield server


def start_runs(live: LiveServer, http: httpx.Client) -> dict[str, str]:
    """One finished run per trigger type (oldest first: manual, schedule, webhook, error);
    returns execution ids by type."""
    workflow_id = http.post("/workflows/", json=echo_trigger("digest")).json()["id"]
    ids = {}
    for trigger in (MANUAL, SCHEDULE, WEBHOOK, ERROR):
        run, _ = live.call(live.app.execute(workflow_id, wait=True, trigger=trigger))
        ids[trigger["type"]] = run.execution_id
    return ids


def invoke(args: list[str], tmp_path: Path, **env: str) -> Result:
    return CliRunner().invoke(cli, args, env={"DUCTWORK_DATA_DIR": str(tmp_path), **env})


def test_runs_lists_filter_by_each_documented_trigger_type(live: LiveServer) -> None:
    with live.client() as http:
        ids = start_runs(live, http)
        for kind, execution_id in ids.items():
            listed = http.get("/workflows/executions", params={"trigger": kind}).json()
            assert [r["execution_id"] for r in listed] == [execution_id]
        refused = http.get("/workflows/executions", params={"trigger": "cron"})
        assert refused.status_code == 422
        assert "manual" in refused.text and "error" in refused.text
        document = http.get("/openapi.json").json()
    operation = document["paths"]["/workflows/executions"]["get"]
    [parameter] = [p for p in operation["parameters"] if p["name"] == "trigger"]
    enum = document["components"]["schemas"]["RunTriggerType"]["enum"]
    assert enum == ["manual", "schedule", "webhook", "error", "sub-workflow"]
    assert "RunTriggerType" in orjson.dumps(parameter["schema"]).decode()


def test_cli_runs_lists_recent_runs_with_their_origin(live: LiveServer, tmp_path: Path) -> None:
    with live.client() as http:
        ids = start_runs(live, http)
        other = http.post("/workflows/", json=echo_trigger("other")).json()["id"]
        other_run = http.post(f"/workflows/{other}/execute", json={}).json()["execution_id"]
    key = {"DUCTWORK_API_KEY": live.admin_key}

    listed = invoke(["runs", "--url", live.url], tmp_path, **key)
    assert listed.exit_code == 0, listed.output
    # Not a terminal: a header and one tab-separated line per run, newest first.
    header, *rows = [line.split("\t") for line in listed.output.splitlines()]
    assert header == ["execution", "workflow", "status", "origin", "created", "took"]
    assert [row[0] for row in rows] == [other_run, *reversed(ids.values())]
    origins = {row[0]: row[3] for row in rows}
    assert origins == {
        other_run: "manual",
        ids["manual"]: "manual",
        ids["schedule"]: "schedule 2026-12-03T07:40:00Z",
        ids["webhook"]: "webhook POST /hooks/new-signup",
        ids["error"]: "error of 3f2a1c0e…",
    }
    assert {row[1] for row in rows} == {"digest", "other"}
    assert {row[2] for row in rows} == {"success"}

    filtered = invoke(
        ["runs", "--url", live.url, "--trigger", "schedule", "--status", "success"], tmp_path, **key
    )
    assert filtered.exit_code == 0, filtered.output
    assert [line.split("\t")[0] for line in filtered.output.splitlines()[1:]] == [ids["schedule"]]
    one = invoke(["runs", "--url", live.url, "-w", other, "--json"], tmp_path, **key)
    assert [run["execution_id"] for run in orjson.loads(one.stdout)] == [other_run]
    limited = invoke(["runs", "--url", live.url, "--limit", "2"], tmp_path, **key)
    assert len(limited.stdout.splitlines()) == 3
    # Where the next page starts, on stderr (stdout stays the table), on one line to copy.
    hint = [line for line in limited.stderr.splitlines() if line.startswith("More runs")]
    assert len(hint) == 1 and len(hint[0].split()) == 4, limited.stderr

    unknown = invoke(["runs", "--url", live.url, "--workflow", "nope"], tmp_path, **key)
    assert unknown.exit_code == 2 and "No workflow 'nope'" in unknown.output
    bad_type = invoke(["runs", "--url", live.url, "--trigger", "cron"], tmp_path, **key)
    assert bad_type.exit_code == 2
    no_key = invoke(["runs", "--url", live.url], tmp_path)
    assert no_key.exit_code == 2 and "DUCTWORK_API_KEY" in no_key.output


def test_cli_watch_shows_what_started_the_run(live: LiveServer, tmp_path: Path) -> None:
    with live.client() as http:
        ids = start_runs(live, http)
    watched = invoke(
        ["watch", ids["webhook"], "--url", live.url], tmp_path, DUCTWORK_API_KEY=live.admin_key
    )
    assert watched.exit_code == 0, watched.output
    assert "Origin: webhook POST /hooks/new-signup" in watched.output
    started = next(line for line in watched.output.splitlines() if "run_started" in line)
    assert "(webhook POST /hooks/new-signup)" in started
    error = invoke(
        ["watch", ids["error"], "--url", live.url], tmp_path, DUCTWORK_API_KEY=live.admin_key
    )
    assert f"Origin: error of {ERROR['execution_id']}" in error.output


def test_cli_validate_reports_trigger_problems(tmp_path: Path) -> None:
    body = {
        **echo_trigger(),
        "triggers": [
            {"type": "schedule", "cron": "not a cron"},
            {"type": "webhook", "path": "new-signup", "auth": {"type": "none"}},
            {"type": "schedule", "every_seconds": 0},
        ],
    }
    path = tmp_path / "wf.json"
    path.write_bytes(orjson.dumps(body))
    result = invoke(["validate", str(path)], tmp_path)
    assert result.exit_code == 1
    assert "triggers[0].cron" in result.output and "triggers[2].every_seconds" in result.output
    assert "triggers[1]" not in result.output

    body["triggers"] = body["triggers"][1:2]
    path.write_bytes(orjson.dumps(body))
    fine = invoke(["validate", str(path)], tmp_path)
    assert fine.exit_code == 0, fine.output


def test_a_node_woken_from_a_park_logs_completed_without_a_latency() -> None:
    from datetime import UTC, datetime

    from ductwork.models import Event
    from ductwork.views import log_message

    def completed(latency: float | None) -> tuple[str, str] | None:
        data = {"latency_ms": latency, "cached": False, "branch": "resumed"}
        event = Event(
            seq=1, type="node_completed", node_id="wait", timestamp=datetime.now(UTC), data=data
        )
        return log_message(event)

    assert completed(None) == ("info", "Completed, took branch 'resumed'")
    assert completed(2.5) == ("info", "Completed in 2.5 ms, took branch 'resumed'")
