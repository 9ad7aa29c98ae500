"""Scale-out benchmarks: an API process, `ductwork worker`s, PostgreSQL and Redis. Prints a table.

    .venv/bin/python bench/scale_out.py [--runs 300]

1. per-node overhead on a 40-node transformer chain (one worker);
2. runs per second of a 3-node workflow with 1 and with 2 workers;
3. seconds from SIGKILL of the worker holding a run to the run moving again elsewhere.

Uses a private redis-server and a fresh database on the local PostgreSQL
(`DUCTWORK_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine import THREE, chain
from bench.report import print_measures
from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import ADMIN_KEY
from tests.support.processes import BIN, Process, RedisServer, worker
from tests.support.smtp_server import free_port
from tests.support.stores import DEFAULT_POSTGRES_URL, postgres_execute, unique_name

LEASE = 2.0


async def throughput(
    client: httpx.AsyncClient, workflow_id: str, runs: int, in_flight: int = 32
) -> float:
    semaphore = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with semaphore:
            response = await client.post(
                f"/workflows/{workflow_id}/execute", json={"inputs": {"n": i}}
            )
            assert response.json()["status"] == "success", response.text

    await one(-1)
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(runs)))
    return runs / (time.perf_counter() - started)


async def per_node(client: httpx.AsyncClient, workflow_id: str, runs: int) -> tuple[float, float]:
    await client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"v": 1}})
    wall, inside = [], []
    for _ in range(runs):
        started = time.perf_counter()
        body = (
            await client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"v": 1}})
        ).json()
        wall.append((time.perf_counter() - started) * 1000 / 40)
        run = (await client.get(f"/workflows/executions/{body['execution_id']}")).json()
        took = (
            __import__("datetime").datetime.fromisoformat(run["end_time"])
            - __import__("datetime").datetime.fromisoformat(run["start_time"])
        ).total_seconds()
        inside.append(took * 1000 / 40)
    return statistics.median(wall), statistics.median(inside)


async def resume_after_kill(
    client: httpx.AsyncClient,
    workers: dict[str, Process],
    env: dict[str, str],
    log_dir: Path,
    hooks: RecordingHttpServer,
    rounds: int,
) -> list[float]:
    hooks.set_delay("/slow", 1.0)
    workflow = {
        "name": "slow",
        "nodes": [{"id": "hook", "type": "webhook", "config": {"url": hooks.url("/slow")}}],
        "edges": [],
    }
    workflow_id = (await client.post("/workflows/", json=workflow)).json()["id"]
    results = []
    for _ in range(rounds):
        execution_id = (
            await client.post(f"/workflows/{workflow_id}/execute", json={"async_execution": True})
        ).json()["execution_id"]
        while True:
            run = (await client.get(f"/workflows/executions/{execution_id}")).json()
            if run["node_states"].get("hook", {}).get("status") == "running" and run.get("worker"):
                break
            await asyncio.sleep(0.01)
        victim = run["worker"].split(":")[0]
        workers[victim].kill()
        killed = time.perf_counter()
        while True:
            run = (await client.get(f"/workflows/executions/{execution_id}")).json()
            if run["node_states"]["hook"].get("attempts") == 2 or run["status"] == "success":
                break
            await asyncio.sleep(0.01)
        results.append(time.perf_counter() - killed)
        workers[victim] = worker(victim, env, log_dir).start()
        workers[victim].wait_for_line("consuming runs")
    return results


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    admin = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    database = unique_name("bench")
    postgres_execute(admin, f'CREATE DATABASE "{database}"')
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        redis = RedisServer(tmp_path).start()
        env = {
            **os.environ,
            "DUCTWORK_STORE_URL": admin.rsplit("/", 1)[0] + f"/{database}",
            "DUCTWORK_REDIS_URL": redis.url,
            "DUCTWORK_DATA_DIR": str(tmp_path / "data"),
            "DUCTWORK_ADMIN_API_KEY": ADMIN_KEY,
            "DUCTWORK_LEASE_SECONDS": str(LEASE),
            "DUCTWORK_HEARTBEAT_SECONDS": "0.5",
            "DUCTWORK_SWEEP_INTERVAL_SECONDS": "0.25",
            "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
        }
        workers: dict[str, Process] = {}
        # The API in a process of its own, as deployed: not sharing a GIL with this client.
        port = free_port()
        api = Process(
            "api", [str(BIN / "ductwork"), "serve", "--port", str(port)], env, tmp_path / "api.log"
        )
        api.start().wait_for_line("Application startup complete")
        api_url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(
                base_url=api_url, timeout=120, headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as client:
                workers["w1"] = worker("w1", env, tmp_path).start()
                workers["w1"].wait_for_line("consuming runs")
                chain_id = (await client.post("/workflows/", json=chain(40).dump())).json()["id"]
                wall, inside = await per_node(client, chain_id, 20)
                rows.append(
                    (
                        "per-node overhead, 40-node chain, 1 worker (end to end)",
                        f"{wall:.2f} ms",
                        "<= 5 ms",
                    )
                )
                rows.append(
                    (
                        "per-node overhead, 40-node chain, 1 worker (in the run)",
                        f"{inside:.2f} ms",
                        "<= 5 ms",
                    )
                )
                three_id = (await client.post("/workflows/", json=THREE.dump())).json()["id"]
                one = await throughput(client, three_id, args.runs)
                rows.append(("3-node runs per second, 1 worker", f"{one:.0f}", ""))
                workers["w2"] = worker("w2", env, tmp_path).start()
                workers["w2"].wait_for_line("consuming runs")
                two = await throughput(client, three_id, args.runs)
                rows.append(("3-node runs per second, 2 workers", f"{two:.0f}", ""))
                with RecordingHttpServer() as hooks:
                    resumes = await resume_after_kill(client, workers, env, tmp_path, hooks, 5)
                rows.append(
                    (
                        f"SIGKILL -> run moving elsewhere (lease {LEASE:g} s), median / max",
                        f"{statistics.median(resumes):.2f} / {max(resumes):.2f} s",
                        "",
                    )
                )
        finally:
            for process in workers.values():
                process.kill()
            api.terminate()
            redis.kill()
            postgres_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
