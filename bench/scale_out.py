"""Scale-out benchmarks: an API process, `ductwork worker`s, PostgreSQL and Redis. Prints a table.

    .venv/bin/python bench/scale_out.py [--runs 300]

1. per-node overhead on a 40-node transformer chain (API + one worker), end to end
   (sync execute over HTTP, divided by 40) and inside the run (start to end time);
2. runs per second of a 3-node workflow (sync execute over HTTP) with 8 clients and
   one worker, and the CPU milliseconds each process spent per run meanwhile: the API,
   the worker, PostgreSQL (the backends of the benchmark's database, and the shared
   background processes apart), redis-server; from those, runs per second per core
   and what 8 and 32 worker cores would need in API, PostgreSQL and Redis;
3. runs per second with 32 requests in flight, with 1 and with 2 workers;
4. seconds from SIGKILL of the worker holding a run to the run moving again elsewhere.

`scaled_measures(runs)` returns the rows of 1 and 2 (what bench/suite.py prints);
running this file prints every row.

Uses a private redis-server and a fresh database on the local PostgreSQL
(`DUCTWORK_TEST_POSTGRES_URL`, default postgresql://postgres@127.0.0.1:5432/test).
The processes run the ductwork package of this checkout (its `src` first on
PYTHONPATH). CPU time is read from /proc (Linux), so the per-run costs hold on a
loaded machine where wall-clock rates do not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.engine import THREE, chain
from bench.report import print_measures
from tests.support.http_servers import RecordingHttpServer
from tests.support.live_server import ADMIN_KEY
from tests.support.processes import BIN, Process, RedisServer, worker
from tests.support.smtp_server import free_port
from tests.support.stores import DEFAULT_POSTGRES_URL, postgres_execute, unique_name

ROOT = Path(__file__).resolve().parents[1]
LEASE = 2.0
CHAIN = 40
CLIENTS = 8
Row = tuple[str, str, str]


# CPU time of processes, from /proc ---------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (its threads included); None once gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    # After "pid (comm)": state is field 3, utime 14 and stime 15 (1-based).
    return (int(fields[11]) + int(fields[12])) / _TICK


def _descendants(pid: int) -> list[int]:
    """`pid` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except OSError:
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


@dataclass
class CpuMeter:
    """CPU seconds per group of processes between `start()` and `stop()`.

    Groups: the API and worker process trees, redis-server, and PostgreSQL split in
    two: the backends connected to the benchmark's database, and the shared
    background processes (WAL writer, checkpointer, background writer), which other
    databases on the server use too. A PostgreSQL backend that ends before `stop()`
    is not counted (the pools keep theirs open).
    """

    api: int
    workers: list[int]
    redis: int
    admin_url: str
    database: str
    _start: dict[int, float] = field(default_factory=dict)
    _groups: dict[str, list[int]] = field(default_factory=dict)

    async def _postgres_pids(self) -> tuple[list[int], list[int]]:
        connection = await asyncpg.connect(self.admin_url, timeout=5)
        try:
            rows = await connection.fetch(
                "SELECT pid, datname, backend_type FROM pg_stat_activity WHERE pid <> "
                "pg_backend_pid()"
            )
        finally:
            await connection.close()
        backends = [row["pid"] for row in rows if row["datname"] == self.database]
        shared = [
            row["pid"]
            for row in rows
            if row["backend_type"] in ("walwriter", "checkpointer", "background writer")
        ]
        return backends, shared

    async def _sample(self) -> dict[str, dict[int, float]]:
        backends, shared = await self._postgres_pids()
        groups = {
            "API": _descendants(self.api),
            "worker": [pid for top in self.workers for pid in _descendants(top)],
            "PostgreSQL backends": backends,
            "PostgreSQL background (shared)": shared,
            "redis-server": [self.redis],
        }
        return {
            name: {pid: cpu for pid in pids if (cpu := _cpu_seconds(pid)) is not None}
            for name, pids in groups.items()
        }

    async def start(self) -> None:
        self._first = await self._sample()

    async def stop(self) -> dict[str, float]:
        """CPU seconds each group spent since `start()`."""
        last = await self._sample()
        spent = {}
        for name, now in last.items():
            before = self._first.get(name, {})
            # A process that appeared meanwhile started from zero.
            spent[name] = sum(cpu - before.get(pid, 0.0) for pid, cpu in now.items())
        return spent


# The deployment ---------------------------------------------------------------------


@dataclass
class Deployment:
    """A private Redis, a fresh database, an API process and named workers."""

    client: httpx.AsyncClient
    api: Process
    redis: RedisServer
    env: dict[str, str]
    log_dir: Path
    admin_url: str
    database: str
    workers: dict[str, Process] = field(default_factory=dict)

    def add_worker(self, name: str) -> Process:
        process = worker(name, self.env, self.log_dir).start()
        process.wait_for_line("consuming runs")
        self.workers[name] = process
        return process

    def meter(self) -> CpuMeter:
        assert self.api.popen is not None and self.redis.process.popen is not None
        return CpuMeter(
            api=self.api.popen.pid,
            workers=[p.popen.pid for p in self.workers.values() if p.popen is not None],
            redis=self.redis.process.popen.pid,
            admin_url=self.admin_url,
            database=self.database,
        )


@contextlib.asynccontextmanager
async def deployment(log_dir: Path) -> AsyncIterator[Deployment]:
    admin = os.environ.get("DUCTWORK_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL)
    database = unique_name("bench")
    postgres_execute(admin, f'CREATE DATABASE "{database}"')
    redis = RedisServer(log_dir).start()
    src = str(ROOT / "src")
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        # The package of this checkout, whatever is installed in the venv.
        "PYTHONPATH": src if not path else f"{src}{os.pathsep}{path}",
        "DUCTWORK_STORE_URL": admin.rsplit("/", 1)[0] + f"/{database}",
        "DUCTWORK_REDIS_URL": redis.url,
        "DUCTWORK_DATA_DIR": str(log_dir / "data"),
        "DUCTWORK_ADMIN_API_KEY": ADMIN_KEY,
        "DUCTWORK_LEASE_SECONDS": str(LEASE),
        "DUCTWORK_HEARTBEAT_SECONDS": "0.5",
        "DUCTWORK_SWEEP_INTERVAL_SECONDS": "0.25",
        "DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS": "true",
        # Out of the way: every call does the work it would in production.
        "DUCTWORK_EXECUTE_RATE_LIMIT": "100000000/minute",
    }
    # The API in a process of its own, as deployed: not sharing a GIL with this client.
    port = free_port()
    api = Process(
        "api", [str(BIN / "ductwork"), "serve", "--port", str(port)], env, log_dir / "api.log"
    )
    deployed: Deployment | None = None
    try:
        api.start().wait_for_line("Application startup complete")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=120,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        ) as client:
            deployed = Deployment(client, api, redis, env, log_dir, admin, database)
            yield deployed
    finally:
        if deployed is not None:
            for process in deployed.workers.values():
                process.kill()
        api.terminate()
        redis.kill()
        postgres_execute(admin, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


# Measures ---------------------------------------------------------------------------


async def throughput(
    client: httpx.AsyncClient, workflow_id: str, runs: int, in_flight: int = 32
) -> float:
    """Runs per second of sync executes, `in_flight` at a time (after one warm-up run)."""
    semaphore = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with semaphore:
            response = await client.post(
                f"/workflows/{workflow_id}/execute", json={"inputs": {"n": i}}
            )
            assert response.json().get("status") == "success", response.text

    await one(-1)
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(runs)))
    return runs / (time.perf_counter() - started)


async def per_node(client: httpx.AsyncClient, workflow_id: str, runs: int) -> tuple[float, float]:
    """Median ms per node of a chain: end to end (the HTTP call) and inside the run."""
    await client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"v": 1}})
    wall, inside = [], []
    for _ in range(runs):
        started = time.perf_counter()
        body = (
            await client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"v": 1}})
        ).json()
        wall.append((time.perf_counter() - started) * 1000 / CHAIN)
        run = (await client.get(f"/workflows/executions/{body['execution_id']}")).json()
        took = datetime.fromisoformat(run["end_time"]) - datetime.fromisoformat(run["start_time"])
        inside.append(took.total_seconds() * 1000 / CHAIN)
    return statistics.median(wall), statistics.median(inside)


def cpu_rows(spent: dict[str, float], runs: int, rate: float) -> list[Row]:
    """CPU ms per run of each process, per core rates, and projections for more workers."""
    per_run = {name: seconds * 1000 / runs for name, seconds in spent.items()}
    rows: list[Row] = [(f"CPU per run, {name}", f"{ms:.2f} ms", "") for name, ms in per_run.items()]
    total = sum(per_run.values())
    rows.append(("CPU per run, all processes", f"{total:.2f} ms", ""))
    rows.append(("runs/s per core, all processes together", f"{1000 / total:.0f}", ""))
    worker_ms = per_run["worker"]
    api_ms = per_run["API"]
    pg_ms = per_run["PostgreSQL backends"] + per_run["PostgreSQL background (shared)"]
    redis_ms = per_run["redis-server"]
    rows.append(("runs/s per worker core (worker CPU alone)", f"{1000 / worker_ms:.0f}", ""))
    rows.append(
        (
            "runs/s at the measured rate, CPU-bound share",
            f"{rate:.0f} at {total * rate / 1000:.2f} cores busy",
            "",
        )
    )
    for cores in (8, 32):
        rate_at = cores * 1000 / worker_ms
        rows.append(
            (
                f"projection, {cores} worker cores",
                f"{rate_at:.0f} runs/s; API {rate_at * api_ms / 1000:.1f} cores, "
                f"PostgreSQL {rate_at * pg_ms / 1000:.1f} cores, "
                f"Redis {rate_at * redis_ms / 1000:.2f} of its 1 core",
                "",
            )
        )
    return rows


async def _core_measures(deployed: Deployment, runs: int) -> list[Row]:
    client = deployed.client
    chain_id = (await client.post("/workflows/", json=chain(CHAIN).dump())).json()["id"]
    wall, inside = await per_node(client, chain_id, max(5, min(20, runs // 10)))
    rows: list[Row] = [
        (
            "scaled: per-node overhead, 40-node chain, API + 1 worker (end to end)",
            f"{wall:.2f} ms",
            "<= 1 ms",
        ),
        ("scaled: per-node overhead, 40-node chain (inside the run)", f"{inside:.2f} ms", ""),
    ]
    three_id = (await client.post("/workflows/", json=THREE.dump())).json()["id"]
    await throughput(client, three_id, CLIENTS * 4, in_flight=CLIENTS)  # warm every connection
    meter = deployed.meter()
    await meter.start()
    rate = await throughput(client, three_id, runs, in_flight=CLIENTS)
    spent = await meter.stop()
    rows.append((f"scaled: 3-node runs/s, {CLIENTS} clients, 1 worker", f"{rate:.0f}", ">= 250"))
    rows.extend(cpu_rows(spent, runs + 1, rate))
    return rows


async def scaled_measures(runs: int) -> list[Row]:
    """(measure, result, target) rows: per-node overhead, runs/s with 8 clients, CPU per run.

    Starts its own Redis, database, API and one worker, and stops them.
    """
    with tempfile.TemporaryDirectory() as tmp:
        async with deployment(Path(tmp)) as deployed:
            deployed.add_worker("w1")
            return await _core_measures(deployed, runs)


async def resume_after_kill(
    deployed: Deployment, hooks: RecordingHttpServer, rounds: int
) -> list[float]:
    client = deployed.client
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
        deployed.workers[victim].kill()
        killed = time.perf_counter()
        while True:
            run = (await client.get(f"/workflows/executions/{execution_id}")).json()
            if run["node_states"]["hook"].get("attempts") == 2 or run["status"] == "success":
                break
            await asyncio.sleep(0.01)
        results.append(time.perf_counter() - killed)
        deployed.add_worker(victim)
    return results


async def all_measures(runs: int) -> list[Row]:
    """Every row: the suite's, then 32 in flight with 1 and 2 workers, then SIGKILL recovery."""
    with tempfile.TemporaryDirectory() as tmp:
        async with deployment(Path(tmp)) as deployed:
            deployed.add_worker("w1")
            rows = await _core_measures(deployed, runs)
            three_id = (await deployed.client.post("/workflows/", json=THREE.dump())).json()["id"]
            one = await throughput(deployed.client, three_id, runs)
            rows.append(("3-node runs/s, 32 in flight, 1 worker", f"{one:.0f}", ""))
            deployed.add_worker("w2")
            two = await throughput(deployed.client, three_id, runs)
            rows.append(("3-node runs/s, 32 in flight, 2 workers", f"{two:.0f}", ""))
            with RecordingHttpServer() as hooks:
                resumes = await resume_after_kill(deployed, hooks, 5)
            rows.append(
                (
                    f"SIGKILL -> run moving elsewhere (lease {LEASE:g} s), median / max",
                    f"{statistics.median(resumes):.2f} / {max(resumes):.2f} s",
                    "",
                )
            )
    return rows


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument(
        "--only-scaled", action="store_true", help="only the rows `scaled_measures` returns"
    )
    args = parser.parse_args()
    load_before = _load()
    measure = scaled_measures if args.only_scaled else all_measures
    rows = await measure(args.runs)
    rows.append(("load average before / after (1, 5, 15 min)", f"{load_before} / {_load()}", ""))
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
