"""Deleting executions and the workflow versions API, over HTTP on a live server."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from ductwork.client import Client, NotFound
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until

SIMPLE: dict[str, Any] = {
    "name": "Greeter",
    "nodes": [
        {"id": "start", "type": "start", "config": {}},
        {
            "id": "shape",
            "type": "transformer",
            "config": {"transform_type": "compose", "mapping": {"greeting": "'hi'"}},
        },
        {"id": "end", "type": "end", "config": {}},
    ],
    "edges": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "end"}],
}

PARKED: dict[str, Any] = {
    "name": "Parked",
    "nodes": [
        {"id": "start", "type": "start", "config": {}},
        {"id": "nap", "type": "delay", "config": {"delay_seconds": 3600}},
    ],
    "edges": [{"from": "start", "to": "nap"}],
}


def create(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/workflows/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_delete_execution(client: httpx.Client, server: LiveServer) -> None:
    workflow_id = create(client, SIMPLE)
    done = client.post(f"/workflows/{workflow_id}/execute", json={}).json()
    assert done["status"] == "success", done
    execution_id = done["execution_id"]
    assert client.get(f"/workflows/executions/{execution_id}").json()["logs"]

    assert client.delete(f"/workflows/executions/{execution_id}").status_code == 204

    assert client.get(f"/workflows/executions/{execution_id}").status_code == 404
    assert client.get(f"/workflows/{workflow_id}/executions").json() == []
    assert client.get(f"/workflows/executions/{execution_id}/events").status_code == 404
    assert server.call(server.app.store.list_events(execution_id)) == []
    again = client.delete(f"/workflows/executions/{execution_id}")
    assert again.status_code == 404 and execution_id in again.json()["detail"]
    assert client.delete("/workflows/executions/no-such-run").status_code == 404
    audit = client.get("/audit", params={"action": "run.delete"}).json()["entries"]
    assert [entry["target"] for entry in audit] == [f"execution:{execution_id}"]

    # A run that has not finished is refused until it is cancelled.
    parked_id = create(client, PARKED)
    parked = client.post(f"/workflows/{parked_id}/execute", json={"async_execution": True}).json()
    parked_run = parked["execution_id"]

    def status() -> str:
        return str(client.get(f"/workflows/executions/{parked_run}").json()["status"])

    wait_until(lambda: status() == "waiting", what="the run parked")
    refused = client.delete(f"/workflows/executions/{parked_run}")
    assert refused.status_code == 409
    assert "cancel it first" in refused.json()["detail"]
    assert client.post(f"/workflows/executions/{parked_run}/cancel").status_code == 200
    wait_until(lambda: status() == "cancelled", within=30, what="the run cancelled")
    assert client.delete(f"/workflows/executions/{parked_run}").status_code == 204


def test_workflow_versions(client: httpx.Client) -> None:
    workflow_id = create(client, SIMPLE)
    second = copy.deepcopy(SIMPLE)
    second["nodes"][1]["config"]["mapping"] = {"greeting": "'hello'"}
    second["nodes"].append(
        {
            "id": "note",
            "type": "transformer",
            "config": {"transform_type": "pick", "fields": ["greeting"]},
        }
    )
    second["edges"].append({"from": "shape", "to": "note"})
    assert client.put(f"/workflows/{workflow_id}", json=second).status_code == 200
    third = copy.deepcopy(second)
    third["name"] = "Greeter v3"
    third["edges"] = [edge for edge in third["edges"] if edge["to"] != "note"]
    third["nodes"] = [node for node in third["nodes"] if node["id"] != "note"]
    assert client.put(f"/workflows/{workflow_id}", json=third).status_code == 200

    listed = client.get(f"/workflows/{workflow_id}/versions").json()
    assert [(v["version"], v["name"], v["node_count"], v["edge_count"]) for v in listed] == [
        (3, "Greeter v3", 3, 2),
        (2, "Greeter", 4, 3),
        (1, "Greeter", 3, 2),
    ]
    paged = client.get(f"/workflows/{workflow_id}/versions", params={"limit": 1, "offset": 2})
    assert [v["version"] for v in paged.json()] == [1]

    first = client.get(f"/workflows/{workflow_id}/versions/1").json()
    assert first["version"] == 1 and first["id"] == workflow_id
    assert first["nodes"][1]["config"]["mapping"] == {"greeting": "'hi'"}

    diff = client.get(f"/workflows/{workflow_id}/versions/diff", params={"from": 1, "to": 3})
    assert diff.status_code == 200, diff.text
    assert diff.json() == {
        "from": 1,
        "to": 3,
        "nodes": {
            "added": [],
            "removed": [],
            "changed": [
                {
                    "id": "shape",
                    "changes": [
                        {"path": "config.mapping.greeting", "from": "'hi'", "to": "'hello'"}
                    ],
                }
            ],
        },
        "edges": {"added": [], "removed": []},
        "workflow": [{"path": "name", "from": "Greeter", "to": "Greeter v3"}],
    }
    added = client.get(
        f"/workflows/{workflow_id}/versions/diff", params={"from": 1, "to": 2}
    ).json()
    assert added["nodes"]["added"] == ["note"]
    assert added["edges"]["added"] == [{"from": "shape", "to": "note", "branch": None}]

    restored = client.post(f"/workflows/{workflow_id}/versions/1/restore")
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 4
    current = client.get(f"/workflows/{workflow_id}").json()
    assert current["version"] == 4 and current["name"] == "Greeter"
    assert current["nodes"][1]["config"]["mapping"] == {"greeting": "'hi'"}
    audit = client.get("/audit", params={"action": "workflow.restore"}).json()["entries"]
    assert audit[0]["details"] == {"name": "Greeter", "version": 4, "restored_from": 1}
    unchanged = client.get(f"/workflows/{workflow_id}/versions/diff?from=1&to=4").json()
    assert unchanged["nodes"]["changed"] == [] and unchanged["workflow"] == []


def test_versions_bad_input(client: httpx.Client) -> None:
    hooked = copy.deepcopy(SIMPLE)
    hooked["triggers"] = [{"type": "webhook", "path": "greet", "auth": {"type": "none"}}]
    workflow_id = create(client, hooked)
    assert client.put(f"/workflows/{workflow_id}", json=SIMPLE).status_code == 200
    create(client, hooked)  # another workflow takes the path now

    # Version 1 no longer validates: its webhook path is served by the other workflow.
    refused = client.post(f"/workflows/{workflow_id}/versions/1/restore")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "triggers[0].path"
    assert client.get(f"/workflows/{workflow_id}").json()["version"] == 2

    base = f"/workflows/{workflow_id}/versions"
    for path, status in [
        ("/workflows/no-such-workflow/versions", 404),
        ("/workflows/no-such-workflow/versions/1", 404),
        (f"{base}/9", 404),
        (f"{base}/diff?from=1&to=9", 404),
        (f"{base}/0", 422),
        (f"{base}/abc", 422),
        (f"{base}/99999999999", 422),
        (f"{base}/diff?from=1", 422),
        (f"{base}/diff?from=x&to=1", 422),
    ]:
        response = client.get(path)
        assert response.status_code == status, (path, response.text)
    missing = client.get(f"{base}/9").json()["detail"]
    assert "9" in missing and workflow_id in missing
    assert client.post(f"{base}/9/restore").status_code == 404
    assert client.post("/workflows/no-such-workflow/versions/1/restore").status_code == 404


def test_python_client_versions_and_delete(server: LiveServer) -> None:
    with Client(server.url, api_key=server.admin_key) as dw:
        workflow = dw.create_workflow(SIMPLE)
        dw.update_workflow(workflow["id"], {**SIMPLE, "name": "Renamed"})

        assert [v["version"] for v in dw.list_versions(workflow["id"])] == [2, 1]
        assert dw.list_versions(workflow["id"], limit=1, offset=1)[0]["name"] == "Greeter"
        assert dw.get_version(workflow["id"], 1)["name"] == "Greeter"
        diff = dw.diff_versions(workflow["id"], 1, 2)
        assert diff["workflow"] == [{"path": "name", "from": "Greeter", "to": "Renamed"}]
        assert dw.restore_version(workflow["id"], 1)["version"] == 3
        with pytest.raises(NotFound):
            dw.get_version(workflow["id"], 7)

        run = dw.execute(workflow["id"])
        dw.delete_execution(run["execution_id"])
        with pytest.raises(NotFound):
            dw.get_execution(run["execution_id"])
