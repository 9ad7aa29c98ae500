"""A workflow's concurrency limit holds across processes: an API and two `ductwork worker`s
sharing PostgreSQL and Redis (the cluster of tests/test_scale_out.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tests.support.http_servers import RecordingHttpServer
from tests.support.polling import wait_until
from tests.test_scale_out import CLUSTER_WAIT, Cluster, run_status
from tests.test_scale_out import cluster as cluster  # a fixture
from tests.test_scale_out import cluster_env as cluster_env  # a fixture


def most_at_once(runs: list[dict[str, Any]]) -> int:
    """The most runs whose [start_time, end_time] spans overlap.

    A run is stamped `start_time` after it was admitted and `end_time` before the
    commit that frees its slot, so spans of runs that never held slots together
    never overlap (every process here reads the same clock).
    """
    edges = []
    for run in runs:
        edges.append((datetime.fromisoformat(run["start_time"]), 1))
        edges.append((datetime.fromisoformat(run["end_time"]), -1))
    peak = current = 0
    for _, step in sorted(edges):  # an end sorts before a start at the same instant
        current += step
        peak = max(peak, current)
    return peak


def test_two_workers_never_run_more_than_the_limit(
    cluster: Cluster, http_server: RecordingHttpServer
) -> None:
    http_server.hold("/held")
    client = cluster.start_api()
    # Booted side by side: each takes seconds on a loaded machine.
    booting = [cluster.start_worker(name, wait=False) for name in ("worker-a", "worker-b")]
    for process in booting:
        process.wait_for_line("consuming runs")
    workflow = {
        "name": "limited",
        "settings": {"max_concurrent_runs": 2},
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "call",
                "type": "webhook",
                "config": {"url": f"{http_server.base_url}/held", "method": "POST"},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "call"}, {"from": "call", "to": "end"}],
    }
    workflow_id = client.post("/workflows/", json=workflow).json()["id"]
    ids = [
        client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True}).json()[
            "execution_id"
        ]
        for _ in range(6)
    ]
    http_server.wait_for_calls("/held", 2, timeout=CLUSTER_WAIT)
    for execution_id in ids[2:]:
        wait_until(
            lambda execution_id=execution_id: "queued_reason" in run_status(client, execution_id),
            within=CLUSTER_WAIT,
            what="a run refused a slot",
        )
    assert http_server.calls("/held") == 2
    http_server.set_delay("/held", 0.2)  # the next runs overlap for a while
    http_server.release("/held")
    wait_until(
        lambda: all(run_status(client, eid)["status"] == "success" for eid in ids),
        within=CLUSTER_WAIT,
        what="every run finishing",
    )
    finals = [run_status(client, eid) for eid in ids]
    assert most_at_once(finals) <= 2
    assert http_server.calls("/held") == 6
