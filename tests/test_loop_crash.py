"""A loop survives the death of the worker running it: SIGKILL mid-loop, another worker
resumes the run, and no completed item calls its upstream again."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.support.processes import Process, RedisServer, worker

RUN_WAIT = 60.0
"""Seconds to wait for the resumed run: a deadline for a stuck run, not a speed check."""

ITEMS = 6
HELD = 3
"""The item whose upstream call is held open while its worker is killed."""


def test_a_worker_killed_mid_loop_resumes_without_rerunning_completed_items(
    tmp_path: Path,
    redis_server: RedisServer,
    http_server: RecordingHttpServer,
    store_url_factory: Callable[[str], str],
) -> None:
    url = store_url_factory("postgresql")
    env = {
        **os.environ,
        "DUCTWORK_STORE_URL": url,
        "DUCTWORK_REDIS_URL": redis_server.url,
        "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
        "DUCTWORK_LEASE_SECONDS": "1.5",
        "DUCTWORK_HEARTBEAT_SECONDS": "0.3",
        "DUCTWORK_SWEEP_INTERVAL_SECONDS": "0.2",
        "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
        "DUCTWORK_LLM_API_KEY": "unused",
    }
    settings = Settings(store_url=url, redis_url=redis_server.url, data_dir=tmp_path / "data")
    http_server.hold(f"/item/{HELD}")
    call = {
        "url": http_server.url("/item/") + "{{ item }}",
        "method": "POST",
        "body": {"index": "{{ index }}"},
    }
    workflow = {
        "name": "loop over upstream",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "each", "type": "loop", "config": {"items": "{{ input.rows }}"}},
            {"id": "call", "type": "webhook", "config": call, "parent": "each"},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "each"}, {"from": "each", "to": "end"}],
    }
    workers: list[Process] = []
    with LiveServer(settings, role="api") as api, api.client() as http:
        try:
            wf_id = http.post("/workflows/", json=workflow).json()["id"]
            first = worker("first", env, tmp_path).start()
            workers.append(first)
            first.wait_for_line("consuming runs")
            started = http.post(
                f"/workflows/{wf_id}/execute",
                json={"async_execution": True, "inputs": {"rows": list(range(ITEMS))}},
            )
            assert started.status_code < 300, started.text
            execution_id = started.json()["execution_id"]
            http_server.wait_for_calls(f"/item/{HELD}", 1, timeout=RUN_WAIT)
            first.kill()  # SIGKILL: nothing of the loop's state is written on the way out
            http_server.release(f"/item/{HELD}")
            workers.append(worker("second", env, tmp_path).start())

            def finished() -> bool:
                view = http.get(f"/workflows/executions/{execution_id}").json()
                return view["status"] in ("success", "error")

            wait_until(finished, within=RUN_WAIT, what="the resumed run to finish")
            view = http.get(f"/workflows/executions/{execution_id}").json()
        finally:
            for process in workers:
                process.kill()
    assert view["status"] == "success", view.get("error")
    results = view["node_states"]["each"]["output"]
    assert [result["body"]["json"]["index"] for result in results] == list(range(ITEMS))
    for index in range(ITEMS):
        calls = http_server.calls(f"/item/{index}")
        if index == HELD:
            # In flight when its worker died: run again, as any running node is.
            assert calls == 2, calls
        else:
            assert calls == 1, (index, calls)  # completed before the kill: never called again
