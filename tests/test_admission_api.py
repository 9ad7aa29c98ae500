"""Concurrency limits over HTTP: bad limits are a 422 naming the field; a run waiting
for a slot shows `queued_reason`, and a cancel of it answers `cancelled`."""

from __future__ import annotations

import copy
from typing import Any

import httpx

from tests.support.http_servers import RecordingHttpServer
from tests.support.polling import wait_until
from tests.support.seed import SEED_BODY


def test_a_bad_limit_is_a_422_naming_the_field(client: httpx.Client) -> None:
    # One server for the three cases: starting one per case costs seconds.
    for limit, words in (
        (0, "greater than or equal to 1"),
        ("two", "valid integer"),
        (100_001, "less than"),
    ):
        body = copy.deepcopy(SEED_BODY)
        body["settings"] = {"max_concurrent_runs": limit}
        response = client.post("/workflows/", json=body)
        assert response.status_code == 422, response.text
        (issue,) = response.json()["detail"]
        assert issue["field"] == "settings.max_concurrent_runs"
        assert words in issue["message"]


def run_of(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    response = client.get(f"/workflows/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_waiting_run_shows_why_and_can_be_cancelled(
    client: httpx.Client, http_server: RecordingHttpServer
) -> None:
    http_server.hold("/held")
    body = {
        "name": "one at a time",
        "settings": {"max_concurrent_runs": 1},
        "nodes": [
            {
                "id": "call",
                "type": "webhook",
                "config": {"url": http_server.url("/held"), "method": "POST"},
            }
        ],
        "edges": [],
    }
    created = client.post("/workflows/", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["settings"] == {"max_concurrent_runs": 1}
    workflow_id = created.json()["id"]
    first, second = (
        client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True}).json()[
            "execution_id"
        ]
        for _ in range(2)
    )
    http_server.wait_for_calls("/held", 1)
    wait_until(lambda: "queued_reason" in run_of(client, second), what="a reason")
    waiting = run_of(client, second)
    assert waiting["status"] == "queued"
    assert waiting["queued_reason"] == (
        "waiting for a slot: the workflow allows 1 concurrent run at once (1 active)"
    )
    assert any(waiting["queued_reason"] in str(line) for line in waiting["logs"])
    assert "queued_reason" not in run_of(client, first)
    cancelled = client.post(f"/workflows/executions/{second}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    http_server.release("/held")
    wait_until(lambda: run_of(client, first)["status"] == "success", what="the first run")
    assert http_server.calls("/held") == 1
