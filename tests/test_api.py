"""The HTTP API against a live uvicorn server: SEED.md's walk-through and the error contract."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from ductwork.nodes.registry import REGISTRY
from ductwork.settings import Settings
from tests.support.openai_stub import OpenAIStub
from tests.support.polling import wait_until
from tests.support.seed import SEED_BODY


def create(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/workflows/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_seed_walkthrough(client: httpx.Client, llm: OpenAIStub) -> None:
    created = client.post("/workflows/", json=SEED_BODY)
    assert created.status_code == 201
    workflow = created.json()
    workflow_id = workflow["id"]
    assert workflow["_id"] == workflow_id and workflow["version"] == 1
    assert workflow["nodes"][1]["config"] == {"prompt": "Say hello"}

    first = client.post(
        f"/workflows/{workflow_id}/execute",
        json={"inputs": {"name": "Alice"}, "async_execution": False},
    )
    assert first.status_code == 200
    body = first.json()
    assert {"execution_id", "workflow_id", "status", "message", "started_at"} <= set(body)
    assert body["status"] == "success" and body["workflow_id"] == workflow_id
    assert body["message"] == "Workflow execution completed"
    assert llm.calls == 1

    status = client.get(f"/workflows/executions/{body['execution_id']}").json()
    assert {
        "execution_id",
        "workflow_id",
        "status",
        "start_time",
        "end_time",
        "node_states",
        "logs",
        "errors",
    } <= set(status)
    ai = status["node_states"]["ai1"]
    assert ai["status"] == "completed" and ai["output"] == "Echo: Say hello"
    assert ai["cached"] is False and ai["latency_ms"] > 0
    assert ai["model"] and ai["usage"]["total_tokens"] > 0
    assert status["errors"] == []
    assert any(line["node_id"] == "ai1" for line in status["logs"])
    assert {"timestamp", "node_id", "message"} <= set(status["logs"][0])

    second = client.post(
        f"/workflows/{workflow_id}/execute", json={"inputs": {"name": "Alice"}}
    ).json()
    again = client.get(f"/workflows/executions/{second['execution_id']}").json()
    assert again["node_states"]["ai1"]["cached"] is True
    assert llm.calls == 1, "the second run must not call the LLM"

    history = client.get(f"/workflows/{workflow_id}/executions").json()
    assert [run["execution_id"] for run in history] == [
        second["execution_id"],
        body["execution_id"],
    ]


def test_async_execution_returns_queued_then_finishes(client: httpx.Client) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["nodes"][1] = {"id": "ai1", "type": "delay", "config": {"delay_seconds": 0.2}}
    workflow_id = create(client, body)
    response = client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True})
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    execution_id = response.json()["execution_id"]
    wait_until(
        lambda: client.get(f"/workflows/executions/{execution_id}").json()["status"] == "success",
        within=10,
        what="the async run to finish",
    )


def test_crud_and_versions(client: httpx.Client) -> None:
    workflow_id = create(client, SEED_BODY)
    assert client.get(f"/workflows/{workflow_id}").json()["name"] == "Test Workflow"
    assert any(w["id"] == workflow_id for w in client.get("/workflows/").json())
    changed = copy.deepcopy(SEED_BODY)
    changed["name"] = "Renamed"
    updated = client.put(f"/workflows/{workflow_id}", json=changed)
    assert updated.status_code == 200 and updated.json()["version"] == 2
    assert client.delete(f"/workflows/{workflow_id}").status_code == 204
    assert client.get(f"/workflows/{workflow_id}").status_code == 404
    assert client.delete(f"/workflows/{workflow_id}").status_code == 404


def test_list_workflows_searches_names_on_the_server(client: httpx.Client) -> None:
    ids = {}
    for name in ("Zq 50% Off", "zq 50 percent", "zq.*(", "other"):
        ids[name] = create(client, {**SEED_BODY, "name": name})

    def search(**params: Any) -> list[str]:
        response = client.get("/workflows/", params=params)
        assert response.status_code == 200, response.text
        return [w["name"] for w in response.json()]

    assert search(q="ZQ 50") == ["zq 50 percent", "Zq 50% Off"]
    assert search(q="0%") == ["Zq 50% Off"]
    assert search(q=".*(") == ["zq.*("]
    assert search(q="zq", limit=1, offset=1) == ["zq 50 percent"]
    listed = client.get("/workflows/", params={"q": "zq.*("}).json()
    assert [w["id"] for w in listed] == [ids["zq.*("]]
    assert "last_run" in listed[0]
    assert set(search(q="")) >= set(ids)
    assert client.get("/workflows/", params={"q": "x" * 200}).status_code == 200
    too_long = client.get("/workflows/", params={"q": "x" * 201})
    assert too_long.status_code == 422
    assert [issue["field"] for issue in too_long.json()["detail"]] == ["q"]


def test_react_flow_edges(client: httpx.Client) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["edges"] = [
        {"id": "e1", "source": "start", "target": "ai1"},
        {"id": "e2", "source": "ai1", "target": "end"},
    ]
    workflow_id = create(client, body)
    assert client.get(f"/workflows/{workflow_id}").json()["edges"][0] == {
        "from": "start",
        "to": "ai1",
        "id": "e1",
    }


def _invalid(client: httpx.Client, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = client.post("/workflows/", json=body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    validate = client.post("/workflows/validate", json=body)
    assert validate.status_code in (200, 422)
    if validate.status_code == 200:
        assert validate.json() == {"valid": False, "issues": detail}
    return list(detail)


@pytest.mark.parametrize(
    ("mutate", "node_id", "field", "words"),
    [
        (lambda b: b["nodes"].append(dict(b["nodes"][0])), "start", "nodes[3].id", "duplicate"),
        (
            lambda b: b["edges"].append({"from": "ai1", "to": "ghost"}),
            "ghost",
            "edges[2].to",
            "unknown node",
        ),
        (
            lambda b: b["edges"].append({"from": "end", "to": "ai1"}),
            "ai1",
            "edges",
            "cycle: ai1 -> end -> ai1",
        ),
        (lambda b: b["nodes"][1].update(type="teleport"), "ai1", "type", "unknown node type"),
        (
            lambda b: b["nodes"][1].update(config={"prompt": "x", "temperature": 9}),
            "ai1",
            "config.temperature",
            "less than or equal",
        ),
        (lambda b: b["nodes"][1].update(config={}), "ai1", "config.prompt", "required"),
        (
            lambda b: b["nodes"][1].update(config={"prompt": "Hi {{ name"}),
            "ai1",
            "config.prompt",
            "syntax error",
        ),
        (
            lambda b: b["edges"][1].update(branch="maybe"),
            "ai1",
            "edges[1].branch",
            "cannot take branch",
        ),
        (
            lambda b: b["nodes"][1].update(retry={"max_attempts": 0}),
            "ai1",
            "nodes.1.retry.max_attempts",
            "greater than",
        ),
        (lambda b: b["nodes"][1].update(on_error="explode"), "ai1", "nodes.1.on_error", "fail"),
    ],
)
def test_invalid_workflows_get_422_naming_node_and_field(
    client: httpx.Client, mutate: Any, node_id: str, field: str, words: str
) -> None:
    body = copy.deepcopy(SEED_BODY)
    mutate(body)
    issues = _invalid(client, body)
    assert any(
        i["node_id"] == node_id and i["field"] == field and words in i["message"] for i in issues
    ), issues


def test_no_entry_node(client: httpx.Client) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["edges"].append({"from": "end", "to": "start"})
    issues = _invalid(client, body)
    assert any("cycle" in i["message"] for i in issues)


def test_validate_endpoint_accepts_valid(client: httpx.Client) -> None:
    assert client.post("/workflows/validate", json=SEED_BODY).json() == {
        "valid": True,
        "issues": [],
    }


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("get", "/workflows/nope", None),
        ("put", "/workflows/nope", SEED_BODY),
        ("post", "/workflows/nope/execute", {}),
        ("get", "/workflows/nope/executions", None),
        ("get", "/workflows/executions/nope", None),
        ("post", "/workflows/executions/nope/cancel", None),
        ("post", "/workflows/executions/nope/retry", None),
    ],
)
def test_unknown_ids_are_404(client: httpx.Client, method: str, path: str, payload: Any) -> None:
    response = client.request(method, path, json=payload)
    assert response.status_code == 404, response.text
    assert "not found" in response.json()["detail"]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"name": 5}', b'{"nodes": "x"}', b""],
)
def test_malformed_bodies_are_4xx(client: httpx.Client, content: bytes) -> None:
    response = client.post(
        "/workflows/", content=content, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text


def test_execute_body_errors(client: httpx.Client) -> None:
    workflow_id = create(client, SEED_BODY)
    response = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": "nope"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["field"] == "inputs"


def test_idempotency_key_header(client: httpx.Client) -> None:
    workflow_id = create(client, SEED_BODY)
    headers = {"Idempotency-Key": "order-42"}
    first = client.post(f"/workflows/{workflow_id}/execute", json={}, headers=headers).json()
    second = client.post(f"/workflows/{workflow_id}/execute", json={}, headers=headers).json()
    assert first["execution_id"] == second["execution_id"]
    assert "existing run" in second["message"]


def test_idempotency_keys_are_scoped_to_their_workflow(client: httpx.Client) -> None:
    headers = {"Idempotency-Key": "order-42"}
    first_wf, second_wf = create(client, SEED_BODY), create(client, SEED_BODY)
    first = client.post(f"/workflows/{first_wf}/execute", json={}, headers=headers).json()
    second = client.post(f"/workflows/{second_wf}/execute", json={}, headers=headers).json()
    assert first["execution_id"] != second["execution_id"]
    assert second["workflow_id"] == second_wf


def test_a_caller_key_cannot_pose_as_a_schedule_slot(client: httpx.Client) -> None:
    """Caller keys live in their own namespace: a key shaped like a schedule's slot key
    (`schedule:{key}:{slot}`) neither moves the schedule's last slot nor breaks its view."""
    body = copy.deepcopy(SEED_BODY)
    body["triggers"] = [{"type": "schedule", "id": "tick", "every_seconds": 3600}]
    workflow_id = create(client, body)
    for forged in ("schedule:tick:9999-12-31T23:59:59Z", "schedule:tick:2999-01-01T00:00:00Z"):
        headers = {"Idempotency-Key": forged}
        first = client.post(f"/workflows/{workflow_id}/execute", json={}, headers=headers)
        again = client.post(f"/workflows/{workflow_id}/execute", json={}, headers=headers)
        assert first.status_code == again.status_code == 200, first.text
        assert first.json()["execution_id"] == again.json()["execution_id"]
        schedule = client.get(f"/workflows/{workflow_id}/schedule")
        assert schedule.status_code == 200, schedule.text
        assert [item["last_slot"] for item in schedule.json()] == [None]


@pytest.mark.parametrize(
    ("field", "value", "zone"),
    [
        ("start_at", "0001-01-01T00:00:00", "Asia/Tokyo"),
        ("start_at", "1969-12-31T23:59:59Z", "UTC"),
        ("start_at", "9999-12-31T23:59:50", "UTC"),
        ("end_at", "9999-12-31T23:59:59", "Pacific/Kiritimati"),
        ("end_at", "0001-01-02T00:00:00", "America/Los_Angeles"),
    ],
)
def test_schedule_times_out_of_range_are_422(
    client: httpx.Client, field: str, value: str, zone: str
) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["triggers"] = [{"type": "schedule", "every_seconds": 5, field: value, "timezone": zone}]
    (issue,) = _invalid(client, body)
    assert issue["field"] == f"triggers[0].{field}"
    assert "1970" in issue["message"] and "9998" in issue["message"]


def test_a_schedule_near_the_end_of_the_calendar_shows_its_last_slots(
    client: httpx.Client,
) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["triggers"] = [
        {"type": "schedule", "every_seconds": 366 * 86_400, "start_at": "9998-12-31T00:00:00Z"},
        {"type": "schedule", "cron": "0 0 1 1 *", "start_at": "9998-12-31T00:00:00Z"},
    ]
    workflow_id = create(client, body)
    schedule = client.get(f"/workflows/{workflow_id}/schedule")
    assert schedule.status_code == 200, schedule.text
    assert [[slot["utc"] for slot in item["next"]] for item in schedule.json()] == [
        ["9998-12-31T00:00:00Z"],  # the next would be in year 10000
        ["9999-01-01T00:00:00Z"],
    ]


def test_cancel_and_retry(client: httpx.Client, full_settings: Settings) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["nodes"][1] = {"id": "ai1", "type": "delay", "config": {"delay_seconds": 1.5}}
    workflow_id = create(client, body)
    run = client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True}).json()
    execution_id = run["execution_id"]

    def status() -> str:
        return str(client.get(f"/workflows/executions/{execution_id}").json()["status"])

    assert client.post(f"/workflows/executions/{execution_id}/cancel").status_code == 200
    wait_until(lambda: status() == "cancelled", within=10, what="the run to be cancelled")
    retried = client.post(f"/workflows/executions/{execution_id}/retry")
    assert retried.status_code == 202
    wait_until(lambda: status() == "success", within=10, what="the retried run to succeed")
    conflict = client.post(f"/workflows/executions/{execution_id}/retry")
    assert conflict.status_code == 409


def test_node_types_health_metrics_docs(client: httpx.Client) -> None:
    types = {t["type"]: t for t in client.get("/node-types").json()}
    assert set(types) == set(REGISTRY)  # every registered type, however many there are
    assert "loop" in types
    assert types["condition"]["branches"] == ["false", "true"]
    assert types["code"]["raw_fields"] == ["code"]
    assert types["condition"]["raw_fields"] == []
    assert types["wait"]["branches"] == ["resumed", "timeout"]
    assert "prompt" in types["ai-processor"]["config_schema"]["properties"]
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert client.get("/metrics").status_code == 200
    openapi = client.get("/openapi.json").json()
    assert "/workflows/executions/{execution_id}" in openapi["paths"]
    assert client.get("/docs").status_code == 200


def test_metrics_count_runs_and_nodes(client: httpx.Client) -> None:
    def sample(name: str, labels: str = "") -> float:
        for line in client.get("/metrics").text.splitlines():
            if line.startswith(name + labels + " ") or line.startswith(name + labels + "{"):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    before = sample("ductwork_runs_finished_total", '{status="success"}')
    nodes_before = sample("ductwork_nodes_finished_total", '{status="completed"}')
    body = copy.deepcopy(SEED_BODY)
    body["nodes"][1] = {"id": "ai1", "type": "transformer", "config": {}}
    workflow_id = create(client, body)
    assert client.post(f"/workflows/{workflow_id}/execute", json={}).json()["status"] == "success"
    assert sample("ductwork_runs_finished_total", '{status="success"}') == before + 1
    assert sample("ductwork_nodes_finished_total", '{status="completed"}') == nodes_before + 3


def test_node_states_follow_definition_order_and_positions_round_trip(client: httpx.Client) -> None:
    body = copy.deepcopy(SEED_BODY)
    body["nodes"][1] = {
        "id": "zz",
        "type": "transformer",
        "config": {},
        "position": {"x": 200, "y": 0},
    }
    body["nodes"][0]["id"] = "mm"
    body["edges"] = [{"from": "mm", "to": "zz"}, {"from": "zz", "to": "end"}]
    workflow_id = create(client, body)
    assert client.get(f"/workflows/{workflow_id}").json()["nodes"][1]["position"] == {
        "x": 200,
        "y": 0,
    }
    run = client.post(f"/workflows/{workflow_id}/execute", json={}).json()
    assert list(run["node_states"]) == ["mm", "zz", "end"]
