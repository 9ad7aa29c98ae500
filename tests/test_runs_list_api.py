"""Runs lists over HTTP: triggers, `GET /workflows/executions` filters and paging, and
each workflow's `last_run` in `GET /workflows/` (what the web app's lists read)."""

from __future__ import annotations

import copy
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest

from ductwork.client import Client
from ductwork.models import Checkpoint, Run, RunStatus, utcnow
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.support.seed import SEED_BODY

T = TypeVar("T")

LIST_ITEM_KEYS = {
    "execution_id",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "status",
    "trigger",
    "created_at",
    "start_time",
    "end_time",
    "error",
    "dead_letter",
    "node_states",
}


def flow(name: str) -> dict[str, Any]:
    """The seed's start -> node -> end, with a transformer instead of the AI node."""
    body = copy.deepcopy(SEED_BODY)
    body["name"] = name
    body["nodes"][1] = {"id": "ai1", "type": "transformer", "config": {}}
    return body


def on_server(server: LiveServer, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a store call on the server's own loop (its store connection lives there)."""
    return server.call(coroutine, timeout=10)


def create(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/workflows/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def execute(client: httpx.Client, workflow_id: str) -> str:
    response = client.post(f"/workflows/{workflow_id}/execute", json={})
    assert response.status_code == 200 and response.json()["status"] == "success"
    return str(response.json()["execution_id"])


def ids(client: httpx.Client, path: str = "/workflows/executions", **params: Any) -> list[str]:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return [item["execution_id"] for item in response.json()]


def test_execute_records_a_manual_trigger_that_a_retry_keeps(client: httpx.Client) -> None:
    body = flow("slow")
    body["nodes"][1] = {"id": "ai1", "type": "delay", "config": {"delay_seconds": 1.5}}
    workflow_id = create(client, body)
    run = client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True})
    execution_id = run.json()["execution_id"]

    def view() -> dict[str, Any]:
        answer: dict[str, Any] = client.get(f"/workflows/executions/{execution_id}").json()
        return answer

    assert view()["trigger"] == {"type": "manual"}
    assert client.post(f"/workflows/executions/{execution_id}/cancel").status_code == 200
    wait_until(lambda: view()["status"] == "cancelled", within=10, what="the cancel")
    retried = client.post(f"/workflows/executions/{execution_id}/retry")
    assert retried.status_code == 202 and retried.json()["trigger"] == {"type": "manual"}
    wait_until(lambda: view()["status"] == "success", within=10, what="the retried run")
    assert view()["trigger"] == {"type": "manual"}


def test_executions_of_every_workflow_filter_and_page_newest_first(
    server: LiveServer, client: httpx.Client
) -> None:
    first, second = create(client, flow("First flow")), create(client, flow("Second flow"))
    a1 = execute(client, first)
    b1 = execute(client, second)
    a2 = execute(client, first)
    # A run started by another trigger (issue 10's kinds) that the engine gave up on.
    hooked = on_server(server, server.app.store.get_run(a2))
    assert hooked is not None
    dead = Run(
        execution_id="dead-webhook-run",
        workflow_id=second,
        workflow_version=1,
        definition=hooked.definition,
        created_at=utcnow() + timedelta(seconds=1),
        trigger={"type": "webhook", "path": "/hooks/orders"},
    )
    on_server(server, server.app.store.create_run(dead))
    fields = {"status": RunStatus.ERROR, "error": "gave up", "dead_letter": True}
    on_server(server, server.app.store.checkpoint(dead.execution_id, Checkpoint(run_fields=fields)))
    dead_id = dead.execution_id

    everything = client.get("/workflows/executions")
    assert everything.status_code == 200
    items = everything.json()
    assert [item["execution_id"] for item in items] == [dead_id, a2, b1, a1]
    for item in items:
        assert set(item) >= LIST_ITEM_KEYS, LIST_ITEM_KEYS - set(item)
        assert item["logs"] == []  # read without events
    by_id = {item["execution_id"]: item for item in items}
    assert (
        by_id[a1]["workflow_name"] == "First flow" and by_id[b1]["workflow_name"] == "Second flow"
    )
    assert by_id[a1]["trigger"] == {"type": "manual"}
    assert by_id[a1]["dead_letter"] is False and by_id[a1]["status"] == "success"
    assert by_id[a1]["start_time"] and by_id[a1]["end_time"]
    assert by_id[dead_id]["trigger"] == {"type": "webhook", "path": "/hooks/orders"}
    assert (by_id[dead_id]["dead_letter"], by_id[dead_id]["error"]) == (True, "gave up")

    assert ids(client, status="success") == [a2, b1, a1]
    assert ids(client, status="error") == [dead_id]
    assert ids(client, status="dead") == [dead_id]
    assert ids(client, status="queued") == []
    assert ids(client, workflow_id=first) == [a2, a1]
    assert ids(client, trigger="manual") == [a2, b1, a1]
    assert ids(client, trigger="webhook", status="dead") == [dead_id]
    assert ids(client, trigger="schedule") == []
    assert ids(client, workflow_id=second, trigger="manual") == [b1]
    assert ids(client, limit=2, offset=1) == [a2, b1]
    assert ids(client, status="success", limit=1, offset=2) == [a1]

    # One workflow's list keeps its shape (with logs) and takes the same filters.
    path = f"/workflows/{second}/executions"
    assert ids(client, path) == [dead_id, b1]
    assert ids(client, path, status="success", trigger="manual") == [b1]
    assert ids(client, path, status="dead") == [dead_id]
    assert ids(client, path, status="cancelled") == []
    assert client.get(path, params={"status": "success"}).json()[0]["logs"]

    for path in ("/workflows/executions", f"/workflows/{first}/executions"):
        refused = client.get(path, params={"status": "finished"})
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["message"] == "request is invalid"
        assert problem["detail"][0]["field"] == "status"
        assert "'dead'" in problem["detail"][0]["message"]
        assert "'success'" in problem["detail"][0]["message"]
    assert client.get("/workflows/executions", params={"trigger": ""}).status_code == 422
    assert client.get("/workflows/no-such-workflow/executions").status_code == 404


def test_workflows_list_their_last_run(server: LiveServer, client: httpx.Client) -> None:
    ran, never = create(client, flow("ran")), create(client, flow("never ran"))
    execute(client, ran)
    latest = execute(client, ran)
    listed = {w["id"]: w for w in client.get("/workflows/").json()}
    assert listed[never]["last_run"] is None
    last = listed[ran]["last_run"]
    assert set(last) == {"execution_id", "status", "created_at", "start_time", "end_time"}
    assert (last["execution_id"], last["status"]) == (latest, "success")
    full = client.get(f"/workflows/executions/{latest}").json()
    assert (last["created_at"], last["start_time"], last["end_time"]) == (
        full["created_at"],
        full["start_time"],
        full["end_time"],
    )


def test_the_workflows_page_asks_the_store_once_for_every_last_run(
    server: LiveServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b", "c"):
        execute(client, create(client, flow(name)))
    store = server.app.store
    calls: list[list[str]] = []
    original = store.latest_runs

    async def counted(workflow_ids: list[str]) -> Any:
        calls.append(list(workflow_ids))
        return await original(workflow_ids)

    monkeypatch.setattr(store, "latest_runs", counted)
    page = client.get("/workflows/", params={"limit": 2}).json()
    assert len(page) == 2 and all(w["last_run"] for w in page)
    assert calls == [[w["id"] for w in page]]


def test_the_python_client_lists_executions_across_workflows(server: LiveServer) -> None:
    with Client(server.url, api_key=server.admin_key) as admin:
        first = admin.create_workflow(flow("one"))["id"]
        second = admin.create_workflow(flow("two"))["id"]
        a = admin.execute(first)["execution_id"]
        b = admin.execute(second)["execution_id"]
        every = admin.list_executions()
        assert [r["execution_id"] for r in every] == [b, a]
        assert [r.get("workflow_name") for r in every] == ["two", "one"]
        assert every[0]["trigger"] == {"type": "manual"}
        assert [r["execution_id"] for r in admin.list_executions(status="success")] == [b, a]
        assert admin.list_executions(status="error") == []
        assert [r["execution_id"] for r in admin.list_executions(trigger="manual", limit=1)] == [b]
        assert [r["execution_id"] for r in admin.list_executions(offset=1)] == [a]
        # With a workflow: that workflow's list (with logs), filtered the same way.
        mine = admin.list_executions(first, status="success", trigger="manual")
        assert [r["execution_id"] for r in mine] == [a] and mine[0]["logs"]
        assert admin.list_executions(workflow_id=second, status="queued") == []
        assert admin.list_dead_letters() == []
        last = {w["id"]: w.get("last_run") for w in admin.list_workflows()}
        assert last[first] is not None and last[first]["execution_id"] == a
