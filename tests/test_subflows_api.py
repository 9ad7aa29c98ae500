"""Sub-workflows over HTTP: the child run's parent link in the run view, the runs list's
`parent_execution_id` filter, and a 422 for a sub-workflow node naming no workflow."""

from __future__ import annotations

from typing import Any

import httpx


def saved(client: httpx.Client, nodes: list[dict[str, Any]], edges: list[Any]) -> str:
    response = client.post("/workflows/", json={"name": "sub", "nodes": nodes, "edges": edges})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_child_runs_link_to_their_parent_and_list_by_it(client: httpx.Client) -> None:
    child_id = saved(
        client,
        [
            {"id": "start", "type": "start"},
            {"id": "end", "type": "end", "config": {"output": "{{ greeting }} from the child"}},
        ],
        [{"from": "start", "to": "end"}],
    )
    parent_id = saved(
        client,
        [
            {
                "id": "call",
                "type": "sub-workflow",
                "config": {"workflow_id": child_id, "inputs": {"greeting": "{{ word }}"}},
            },
            {"id": "end", "type": "end"},
        ],
        [{"from": "call", "to": "end"}],
    )
    response = client.post(f"/workflows/{parent_id}/execute", json={"inputs": {"word": "hi"}})
    assert response.status_code == 200, response.text
    parent = response.json()
    assert parent["status"] == "success", parent
    assert parent["result"] == "hi from the child"
    child_execution = parent["node_states"]["call"]["child_execution_id"]

    listed = client.get(
        "/workflows/executions", params={"parent_execution_id": parent["execution_id"]}
    )
    assert listed.status_code == 200, listed.text
    assert [run["execution_id"] for run in listed.json()] == [child_execution]
    child = client.get(f"/workflows/executions/{child_execution}").json()
    assert (child["parent_execution_id"], child["parent_node_id"], child["depth"]) == (
        parent["execution_id"],
        "call",
        1,
    )
    assert child["trigger"]["type"] == "sub-workflow"
    assert child["trigger"]["node_id"] == "call"
    top = client.get(f"/workflows/executions/{parent['execution_id']}").json()
    assert (top["parent_execution_id"], top["parent_node_id"], top["depth"]) == (None, None, 0)
    by_trigger = client.get("/workflows/executions", params={"trigger": "sub-workflow"}).json()
    assert child_execution in [run["execution_id"] for run in by_trigger]
    assert (
        client.get("/workflows/executions", params={"parent_execution_id": ""}).status_code == 422
    )


def test_saving_a_call_to_an_unknown_workflow_is_a_422(client: httpx.Client) -> None:
    response = client.post(
        "/workflows/",
        json={
            "name": "dangling",
            "nodes": [{"id": "call", "type": "sub-workflow", "config": {"workflow_id": "nope"}}],
            "edges": [],
        },
    )
    assert response.status_code == 422, response.text
    assert {
        "node_id": "call",
        "field": "config.workflow_id",
        "message": "no workflow with the id 'nope'",
    } in response.json()["detail"]
