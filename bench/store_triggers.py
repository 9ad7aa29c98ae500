"""The store reads and writes triggers lean on, per store, with many runs and workflows stored.

    .venv/bin/python bench/store_triggers.py [--runs 5000] [--workflows 500] [--iterations 300]
        [--stores sqlite,postgresql,mongodb]

Each is one indexed read or one compare-and-set, so its cost should not grow
with what the store holds:

- find_hook: the workflow serving a webhook path (every inbound webhook);
- latest_idempotency_key: the last slot a schedule fired (every scheduler tick
  that starts from the store), among `--runs` slot-keyed runs of one workflow;
- find_runs(error_workflow_pending=True): the sweep's outbox query (every
  second), with 3 of `--runs` runs flagged;
- resume_node: one approval click (each on a run of its own; the run counts).

Stores as in bench/store_checkpoint.py: SQLite in a temporary file, PostgreSQL in
a fresh database on DUCTWORK_TEST_POSTGRES_URL, MongoDB on a SecantusDB server
started for the purpose (a Python server: its numbers say little about a real
mongod) or on --mongodb-url. SecantusDB's planner uses an index only for a
filter of one field (or all equalities an index covers exactly), so the run
queries here scan its whole collection: minutes at the default sizes, where a
real mongod probes its indexes.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.store_checkpoint import given_url, postgres_url, secantus_url, sqlite_url, summary

from ductwork.models import (
    Checkpoint,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    Workflow,
    WorkflowDefinition,
    utcnow,
)
from ductwork.store.base import RunQuery, Store
from ductwork.store.factory import create_store

WARMUP = 20


def definition(name: str, triggers: list[dict[str, Any]]) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "name": name,
            "nodes": [{"id": "start", "type": "transformer"}, {"id": "approve", "type": "wait"}],
            "edges": [{"from": "start", "to": "approve"}],
            "triggers": triggers,
        }
    )


async def timed(call: Callable[[int], Awaitable[object]], iterations: int) -> list[float]:
    for i in range(WARMUP):
        await call(i)
    timings = []
    clock = time.perf_counter
    for i in range(WARMUP, WARMUP + iterations):
        start = clock()
        await call(i)
        timings.append(clock() - start)
    return timings


async def fill(store: Store, runs: int, workflows: int, parked: int) -> list[str]:
    """Workflows with webhooks and schedules, slot-keyed runs, and runs parked on a wait node."""
    now = utcnow()
    for i in range(workflows):
        triggers = [{"type": "webhook", "path": f"hook-{i}", "auth": {"type": "none"}}]
        if i % 10 == 0:
            triggers.append({"type": "schedule", "every_seconds": 60})
        await store.create_workflow(
            Workflow(
                id=f"wf-{i}",
                definition=definition(f"flow {i}", triggers),
                created_at=now,
                updated_at=now,
            )
        )
    plain = definition("runs", [])
    for i in range(runs):
        slot = (now + timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await store.create_run(
            Run(
                execution_id=str(uuid.uuid4()),
                workflow_id="wf-0",
                workflow_version=1,
                definition=plain,
                created_at=now,
                idempotency_key=f"schedule:s0:{slot}",
                status=RunStatus.ERROR if i % (runs // 3) == 0 else RunStatus.SUCCESS,
                error_workflow_pending=i % (runs // 3) == 0,
            )
        )
    ids = []
    for _ in range(parked):
        run = Run(
            execution_id=str(uuid.uuid4()),
            workflow_id="wf-1",
            workflow_version=1,
            definition=plain,
            created_at=now,
        )
        await store.create_run(run)
        waiting = NodeState(status=NodeStatus.WAITING, meta={"resumable": True})
        await store.checkpoint(
            run.execution_id,
            Checkpoint(node_states={"approve": waiting}, run_fields={"status": "waiting"}),
        )
        ids.append(run.execution_id)
    return ids


async def measure(url: str, runs: int, workflows: int, iterations: int) -> dict[str, list[float]]:
    store = create_store(url)
    await store.start()
    try:
        parked = await fill(store, runs, workflows, WARMUP + iterations)
        now = utcnow()
        pending = RunQuery(error_workflow_pending=True)
        calls: dict[str, Callable[[int], Awaitable[object]]] = {
            "find_hook": lambda i: store.find_hook(f"hook-{i % workflows}"),
            "latest_idempotency_key": lambda i: store.latest_idempotency_key(
                "wf-0", "schedule:s0:"
            ),
            "find_runs(error_workflow_pending)": lambda i: store.find_runs(pending),
            "resume_node": lambda i: store.resume_node(parked[i], "approve", {"ok": i}, now),
        }
        return {name: await timed(call, iterations) for name, call in calls.items()}
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--stores", default="sqlite,postgresql,mongodb")
    parser.add_argument("--mongodb-url", help="a real MongoDB to measure instead of SecantusDB")
    args = parser.parse_args()

    targets: list[tuple[str, Callable[[], AbstractAsyncContextManager[str]]]] = [
        ("sqlite", sqlite_url),
        ("postgresql", postgres_url),
    ]
    if args.mongodb_url:
        targets.append(("mongodb", lambda: given_url(args.mongodb_url)))
    else:
        targets.append(("mongodb (secantusdb)", secantus_url))

    chosen = args.stores.split(",")
    targets = [(name, url) for name, url in targets if name.split()[0] in chosen]
    console = Console()
    table = Table(
        title=f"{args.workflows} workflows, {args.runs} slot-keyed runs, "
        f"{args.iterations} iterations each"
    )
    for column in ("store", "operation", "mean ms", "p50 ms", "p95 ms"):
        table.add_column(column, justify="left" if column in ("store", "operation") else "right")
    for name, url_context in targets:
        try:
            async with url_context() as url:
                results = await measure(url, args.runs, args.workflows, args.iterations)
        except Exception as exc:
            console.print(f"[yellow]{name}: skipped ({type(exc).__name__}: {exc})[/yellow]")
            continue
        for operation, timings in results.items():
            mean, p50, p95 = summary(timings)
            table.add_row(name, operation, f"{mean:.3f}", f"{p50:.3f}", f"{p95:.3f}")
    console.print(table)


if __name__ == "__main__":
    asyncio.run(main())
