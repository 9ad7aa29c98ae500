"""Scale-out with real processes: an API, two `ductwork worker`s, PostgreSQL and Redis.

Workers are SIGKILLed mid-run; runs must finish on the other worker, completed
nodes must not run again, and a node cut mid-flight runs again with the same
Idempotency-Key. Redis here is a private redis-server (so a test may kill it);
PostgreSQL is the machine's service, one fresh database per test.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.live_server import LiveServer
from tests.support.polling import wait_until
from tests.support.processes import Process, RedisServer, worker
from tests.support.tcp_proxy import TcpProxy

LEASE = 1.5
CLUSTER_WAIT = 30.0
"""Seconds a cluster test waits for a run to get somewhere (processes boot, leases lapse)."""


@pytest.fixture
def cluster_env(
    tmp_path: Path, redis_server: RedisServer, store_url_factory: Callable[[str], str]
) -> dict[str, str]:
    import os

    return {
        **os.environ,
        "DUCTWORK_STORE_URL": store_url_factory("postgresql"),
        "DUCTWORK_REDIS_URL": redis_server.url,
        "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
        "DUCTWORK_LEASE_SECONDS": str(LEASE),
        "DUCTWORK_HEARTBEAT_SECONDS": "0.3",
        "DUCTWORK_SWEEP_INTERVAL_SECONDS": "0.2",
        "DUCTWORK_DURABLE_DELAY_THRESHOLD_SECONDS": "1",
        "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
        "DUCTWORK_LLM_API_KEY": "unused",
    }


class Cluster:
    """An API (in this process, role api) and named worker processes."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.workers: dict[str, Process] = {}
        self.api: LiveServer | None = None
        self.client: httpx.Client | None = None

    def start_api(self) -> httpx.Client:
        settings = Settings(
            **{
                key.removeprefix("DUCTWORK_").lower(): value
                for key, value in self.env.items()
                if key.startswith("DUCTWORK_")
            }
        )
        self.api = LiveServer(settings, role="api").start()
        self.client = self.api.client(timeout=30)
        return self.client

    def stop_api(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.api is not None:
            self.api.stop()
        self.api = None

    def start_worker(self, name: str, *, wait: bool = True) -> Process:
        process = worker(name, self.env, self.log_dir).start()
        if wait:
            process.wait_for_line("consuming runs")
        self.workers[name] = process
        return process

    def stop_all(self) -> None:
        for process in self.workers.values():
            process.kill()
        self.stop_api()


@pytest.fixture
def cluster(cluster_env: dict[str, str], tmp_path: Path) -> Iterator[Cluster]:
    running = Cluster(cluster_env, tmp_path)
    yield running
    running.stop_all()


def run_status(client: httpx.Client, execution_id: str) -> dict[str, Any]:
    response = client.get(f"/workflows/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def start_run(client: httpx.Client, workflow: dict[str, Any]) -> str:
    """Save a workflow and start it asynchronously; returns the execution id."""
    workflow_id = client.post("/workflows/", json=workflow).json()["id"]
    response = client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True})
    return str(response.json()["execution_id"])


def slow_workflow(base: str) -> dict[str, Any]:
    """start -> hook1 (slow webhook) -> hook2 (slow webhook) -> end."""
    return {
        "name": "slow hooks",
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "hook1",
                "type": "webhook",
                "config": {"url": f"{base}/slow1", "method": "POST"},
            },
            {
                "id": "hook2",
                "type": "webhook",
                "config": {"url": f"{base}/slow2", "method": "POST"},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"from": "start", "to": "hook1"},
            {"from": "hook1", "to": "hook2"},
            {"from": "hook2", "to": "end"},
        ],
    }


def test_sigkill_workers_mid_run_ten_times(
    cluster: Cluster, http_server: RecordingHttpServer
) -> None:
    http_server.set_delay("/slow1", 0.4)
    http_server.set_delay("/slow2", 0.4)
    client = cluster.start_api()
    cluster.start_worker("worker-a")
    cluster.start_worker("worker-b")
    workflow_id = client.post("/workflows/", json=slow_workflow(http_server.base_url)).json()["id"]

    all_runs: list[str] = []
    completed_before_kill: dict[tuple[str, str], int] = {}
    cut_mid_flight: set[tuple[str, str]] = set()
    resume_seconds: list[float] = []
    for round_ in range(10):
        runs = [
            client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True}).json()[
                "execution_id"
            ]
            for _ in range(3)
        ]
        all_runs += runs
        victims: list[str] = []

        def a_webhook_is_in_flight(runs: list[str] = runs, victims: list[str] = victims) -> bool:
            for execution_id in runs:
                status = run_status(client, execution_id)
                running = [
                    node
                    for node in ("hook1", "hook2")
                    if status["node_states"].get(node, {}).get("status") == "running"
                ]
                name = str(status.get("worker", "")).split(":")[0]
                if running and name in cluster.workers:
                    victims.append(name)
                    return True
            return False

        wait_until(
            a_webhook_is_in_flight, within=CLUSTER_WAIT, what=f"round {round_}: a webhook in flight"
        )
        snapshot = {execution_id: run_status(client, execution_id) for execution_id in runs}
        victim_name = victims[0]
        cluster.workers[victim_name].kill()
        killed_at = time.monotonic()
        # The replacement boots while the survivor takes over; it must not be needed for that.
        replacement = cluster.start_worker(victim_name, wait=False)
        for execution_id, status in snapshot.items():
            for node in ("hook1", "hook2"):
                state = status["node_states"].get(node, {})
                if state.get("status") == "completed":
                    completed_before_kill[(execution_id, node)] = 1
        for execution_id in runs:
            try:
                wait_until(
                    lambda e=execution_id: run_status(client, e)["status"] == "success",  # type: ignore[misc]
                    within=30,
                    what=f"run {execution_id} finishing after the kill",
                )
            except AssertionError:
                last = run_status(client, execution_id)
                raise AssertionError(
                    f"run {execution_id} did not succeed after the kill: status "
                    f"{last['status']}, error {last.get('error')!r}, redrives "
                    f"{last.get('redrives', 0)}, worker {last.get('worker')!r}"
                ) from None
        resume_seconds.append(time.monotonic() - killed_at)
        replacement.wait_for_line("consuming runs")

    keys: dict[tuple[str, str], list[str | None]] = {}
    for path, node in (("/slow1", "hook1"), ("/slow2", "hook2")):
        for request in http_server.requests(path):
            key = request.idempotency_key
            assert key is not None
            execution_id = key.rsplit(":", 1)[0]
            keys.setdefault((execution_id, node), []).append(key)
    for execution_id in all_runs:
        final = run_status(client, execution_id)
        assert final["status"] == "success"
        for node in ("hook1", "hook2"):
            calls = keys.get((execution_id, node), [])
            attempts = final["node_states"][node]["attempts"]
            assert len(calls) >= 1
            assert len(set(calls)) == 1, "every call of a node carries the same Idempotency-Key"
            if (execution_id, node) in completed_before_kill:
                assert len(calls) == 1, (
                    f"{node} of {execution_id} completed before the kill but ran again"
                )
            if len(calls) > 1:
                cut_mid_flight.add((execution_id, node))
                assert attempts == len(calls), (execution_id, node, attempts, calls)
    assert cut_mid_flight, "no kill interrupted a node mid-flight; the test proved nothing"
    print(
        f"\nresume after SIGKILL: max {max(resume_seconds):.2f} s; "
        f"cut mid-flight: {len(cut_mid_flight)}"
    )


def test_kill_redis_mid_run_runs_still_finish(
    cluster: Cluster, http_server: RecordingHttpServer, redis_server: RedisServer
) -> None:
    http_server.hold("/slow1")
    client = cluster.start_api()
    cluster.start_worker("worker-a")
    execution_id = start_run(client, slow_workflow(http_server.base_url))
    http_server.wait_for_calls("/slow1", 1, timeout=20)
    redis_server.kill()
    http_server.release("/slow1")
    wait_until(
        lambda: run_status(client, execution_id)["status"] == "success",
        within=CLUSTER_WAIT,
        what="run finishing without Redis",
    )


def test_restart_everything_while_parked(cluster: Cluster, redis_server: RedisServer) -> None:
    client = cluster.start_api()
    cluster.start_worker("worker-a")
    workflow = {
        "name": "parked",
        "nodes": [
            {"id": "wait", "type": "delay", "config": {"delay_seconds": 5}},
            {"id": "end", "type": "end", "config": {"output": "woke"}},
        ],
        "edges": [{"from": "wait", "to": "end"}],
    }
    # Taken before the run starts, so a slow look at the parked run cannot shorten it.
    started = time.monotonic()
    execution_id = start_run(client, workflow)
    wait_until(
        lambda: run_status(client, execution_id)["status"] == "waiting",
        within=CLUSTER_WAIT,
        what="run parked",
    )
    cluster.stop_all()
    redis_server.kill()
    redis_server.start()
    client = cluster.start_api()
    cluster.start_worker("worker-b")
    wait_until(
        lambda: run_status(client, execution_id)["status"] == "success", within=30, what="resume"
    )
    assert time.monotonic() - started >= 4.9, "woke before its 5 s delay was up"
    assert run_status(client, execution_id)["result"] == "woke"


def test_cancel_from_api_stops_run_on_worker(
    cluster: Cluster, http_server: RecordingHttpServer
) -> None:
    http_server.hold("/slow1")
    # Heartbeats an hour apart: the worker's own look at the store cannot see the
    # cancel within the test, so only the control message can deliver it.
    cluster.env = {
        **cluster.env,
        "DUCTWORK_HEARTBEAT_SECONDS": "3600",
        "DUCTWORK_LEASE_SECONDS": "7200",
    }
    client = cluster.start_api()
    cluster.start_worker("worker-a")
    execution_id = start_run(client, slow_workflow(http_server.base_url))
    http_server.wait_for_calls("/slow1", 1, timeout=CLUSTER_WAIT)
    assert client.post(f"/workflows/executions/{execution_id}/cancel").status_code == 200
    wait_until(
        lambda: run_status(client, execution_id)["status"] == "cancelled",
        within=CLUSTER_WAIT,
        what="the cancel reaching the worker",
    )
    final = run_status(client, execution_id)
    assert final["node_states"]["hook1"]["status"] == "cancelled"
    http_server.release("/slow1")
    assert http_server.calls("/slow2") == 0


def test_retry_failed_run_after_fixing_workflow(
    cluster: Cluster, http_server: RecordingHttpServer
) -> None:
    client = cluster.start_api()
    cluster.start_worker("worker-a")
    broken = slow_workflow(http_server.base_url)
    broken["nodes"][2]["config"]["url"] = f"{http_server.base_url}/broken"
    http_server.script("/broken", Reply(status=400, body="bad request"))
    workflow_id = client.post("/workflows/", json=broken).json()["id"]
    execution_id = client.post(f"/workflows/{workflow_id}/execute", json={}).json()["execution_id"]
    wait_until(
        lambda: run_status(client, execution_id)["status"] == "error",
        within=CLUSTER_WAIT,
        what="failure",
    )
    assert (
        client.put(
            f"/workflows/{workflow_id}", json=slow_workflow(http_server.base_url)
        ).status_code
        == 200
    )
    retried = client.post(
        f"/workflows/executions/{execution_id}/retry", json={"use_current_definition": True}
    )
    assert retried.status_code == 202
    wait_until(
        lambda: run_status(client, execution_id)["status"] == "success",
        within=CLUSTER_WAIT,
        what="retry",
    )
    final = run_status(client, execution_id)
    assert final["workflow_version"] == 2
    assert http_server.calls("/slow1") == 1, "the completed node must not run again"
    assert http_server.calls("/slow2") == 1


def test_sigkill_while_a_checkpoint_is_in_flight(
    cluster: Cluster, http_server: RecordingHttpServer
) -> None:
    """The worker dies with a commit on the wire: nothing committed is lost or run again."""
    from urllib.parse import urlsplit

    store_url = cluster.env["DUCTWORK_STORE_URL"]
    parts = urlsplit(store_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        proxied = parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}").geturl()
        http_server.hold("/slow1")
        client = cluster.start_api()
        cluster.env = {**cluster.env, "DUCTWORK_STORE_URL": proxied}
        victim = cluster.start_worker("victim")
        cluster.env = {**cluster.env, "DUCTWORK_STORE_URL": store_url}
        execution_id = start_run(client, slow_workflow(http_server.base_url))
        http_server.wait_for_calls("/slow1", 1, timeout=CLUSTER_WAIT)
        proxy.stall()
        http_server.release("/slow1")
        # hook1 answered; its worker is now writing the completion through the stalled proxy.
        wait_until(lambda: proxy.held > 0, within=CLUSTER_WAIT, what="a commit in flight")
        victim.kill()
        proxy.flow()
        cluster.start_worker("survivor")
        wait_until(
            lambda: run_status(client, execution_id)["status"] == "success",
            within=CLUSTER_WAIT,
            what="the run finishing on the survivor",
        )
    final = run_status(client, execution_id)
    keys = [request.idempotency_key for request in http_server.requests("/slow1")]
    assert len(set(keys)) == 1, "a re-sent webhook carries the same Idempotency-Key"
    assert final["node_states"]["hook1"]["attempts"] == len(keys)
    assert http_server.calls("/slow2") == 1
    # Every stored event, in order, none lost or written twice by the half-done commit.
    with client.stream("GET", f"/workflows/executions/{execution_id}/events") as stream:
        seqs = [int(line[3:]) for line in stream.iter_lines() if line.startswith("id:")]
    assert len(seqs) >= 8, seqs  # run and node events of start, hook1 (twice), hook2, end
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_backlog_is_in_the_run_stream_once_however_many_sweeps_pass(
    cluster: Cluster, http_server: RecordingHttpServer, redis_server: RedisServer
) -> None:
    import redis

    http_server.hold("/slow1")
    cluster.env["DUCTWORK_MAX_CONCURRENT_RUNS"] = "1"
    # A run is offered once per marker lifetime (two leases): 20 s here, longer than the
    # 25 sweeps take, so each waiting run must be in the stream exactly once.
    cluster.env["DUCTWORK_LEASE_SECONDS"] = "10"
    client = cluster.start_api()
    cluster.start_worker("worker-a")
    workflow_id = client.post("/workflows/", json=slow_workflow(http_server.base_url)).json()["id"]
    runs = [
        client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True}).json()[
            "execution_id"
        ]
        for _ in range(12)
    ]
    # The worker's one slot is held by the first run: the other eleven wait in the stream,
    # older than the sweep's grace period (2 s) after a few sweeps.
    http_server.wait_for_calls("/slow1", 1, timeout=CLUSTER_WAIT)
    raw = redis.Redis.from_url(redis_server.url)
    try:

        def sweeps() -> int:
            # Each sweep first takes or renews the sweep lock: one EVALSHA.
            stats = raw.info("commandstats").get("cmdstat_evalsha", {})
            return int(stats.get("calls", 0))

        counted_from = sweeps()
        wait_until(lambda: sweeps() >= counted_from + 25, within=CLUSTER_WAIT, what="25 sweeps")
        assert raw.xlen("ductwork:runs") == len(runs)
    finally:
        raw.close()
    http_server.release("/slow1")
    for execution_id in runs:
        wait_until(
            lambda e=execution_id: run_status(client, e)["status"] == "success",  # type: ignore[misc]
            within=CLUSTER_WAIT,
            what=f"{execution_id} finishing",
        )
