"""What usage accounting and budget checks cost. Prints a table.

    .venv/bin/python bench/budget.py [--runs 5000] [--postgres postgresql://postgres@127.0.0.1:5432/test]

1. `Store.workflow_cost_since` (a daily budget's query) and `Store.workflow_usage`
   (30 days, per day) over a workflow with `--runs` runs that spent, on SQLite and,
   with `--postgres`, on a fresh database there (dropped afterwards);
2. `RunBudget.refusal` per LLM call: no budget, a per-run budget, a per-day budget
   reading the store each call, and with the one-second reuse the engine does
   (engine/budget.py `DAY_SPEND_CACHE_SECONDS`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.engine import budget
from ductwork.engine.budget import RunBudget
from ductwork.models import Checkpoint, Run, WorkflowDefinition, WorkflowSettings
from ductwork.store.base import Store
from ductwork.store.factory import create_store
from ductwork.usage import CallUsage, RunUsage, start_of_day

DEFINITION = WorkflowDefinition.model_validate(
    {"name": "b", "nodes": [{"id": "s", "type": "start"}]}
)


async def fill(store: Store, runs: int) -> None:
    """`runs` runs of workflow `wf` over the last 30 days, each with usage and cost."""
    now = datetime.now(UTC)
    usage = RunUsage()
    usage.add(CallUsage("m", 120, 40, 0.001))
    fields = {"usage": usage.dump(), "cost": usage.cost}
    for index in range(runs):
        run = Run(
            execution_id=f"r{index}-{uuid.uuid4().hex[:6]}",
            workflow_id="wf",
            workflow_version=1,
            definition=DEFINITION,
            created_at=now - timedelta(minutes=index * 30 * 24 * 60 // max(runs, 1)),
        )
        await store.create_run(run)
        await store.checkpoint(run.execution_id, Checkpoint(run_fields=fields))


async def median_ms(action: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()  # type: ignore[operator]
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def store_rows(name: str, url: str, runs: int) -> list[tuple[str, str, str]]:
    store = create_store(url)
    await store.start()
    try:
        await fill(store, runs)
        today = start_of_day(datetime.now(UTC))
        month = today - timedelta(days=29)
        cost = await median_ms(lambda: store.workflow_cost_since("wf", today), 50)
        usage = await median_ms(lambda: store.workflow_usage("wf", month), 20)
        run = Run(
            execution_id="probe",
            workflow_id="wf",
            workflow_version=1,
            definition=DEFINITION.model_copy(
                update={"settings": WorkflowSettings(max_cost_per_day=1e9)}
            ),
            created_at=datetime.now(UTC),
        )
        checker = RunBudget(run, store, {})
        budget.DAY_SPEND_CACHE_SECONDS = 0.0
        uncached = await median_ms(lambda: checker.refusal("n", 0.001), 200)
        budget.DAY_SPEND_CACHE_SECONDS = 1.0
        cached = await median_ms(lambda: checker.refusal("n", 0.001), 2000)
    finally:
        await store.close()
    return [
        (
            f"{name}: workflow_cost_since (today, {runs} runs in 30 days)",
            f"{cost:.3f} ms",
            "< 5 ms",
        ),
        (f"{name}: workflow_usage (30 days, {runs} runs)", f"{usage:.2f} ms", "< 100 ms"),
        (f"{name}: per-day check, store read each call", f"{uncached:.3f} ms", "< 5 ms"),
        (f"{name}: per-day check, read reused for 1 s", f"{cached * 1000:.1f} µs", "< 20 µs"),
    ]


async def check_rows() -> list[tuple[str, str, str]]:
    def run_with(settings: WorkflowSettings) -> Run:
        return Run(
            execution_id="x",
            workflow_id="wf",
            workflow_version=1,
            definition=DEFINITION.model_copy(update={"settings": settings}),
            created_at=datetime.now(UTC),
        )

    free = RunBudget(run_with(WorkflowSettings()), None, {})  # type: ignore[arg-type]
    per_run = RunBudget(run_with(WorkflowSettings(max_cost_per_run=1e9)), None, {})  # type: ignore[arg-type]
    none_us = await median_ms(lambda: free.refusal("n", 0.01), 5000) * 1000
    run_us = await median_ms(lambda: per_run.refusal("n", 0.01), 5000) * 1000
    meta = {"usage": CallUsage("m", 100, 30, 0.002).dump()}
    started = time.perf_counter()
    for _ in range(5000):
        per_run.record("n", meta)
    record_us = (time.perf_counter() - started) / 5000 * 1e6
    return [
        ("check, no budget", f"{none_us:.1f} µs", "< 5 µs"),
        ("check, max_cost_per_run", f"{run_us:.1f} µs", "< 10 µs"),
        ("count a node's usage (record)", f"{record_us:.1f} µs", "< 20 µs"),
    ]


async def fresh_postgres(admin: str) -> tuple[str, str]:
    name = f"bench_budget_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin).set(database=name).render_as_string(hide_password=False), name


async def drop_postgres(admin: str, name: str) -> None:
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def main(runs: int, postgres: str | None) -> None:
    rows = await check_rows()
    with tempfile.TemporaryDirectory() as directory:
        rows += await store_rows("SQLite", f"sqlite:///{directory}/b.db", runs)
    if postgres:
        url, name = await fresh_postgres(postgres)
        try:
            rows += await store_rows("PostgreSQL", url, runs)
        finally:
            await drop_postgres(postgres, name)
    print_measures(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--postgres", default=None)
    options = parser.parse_args()
    asyncio.run(main(options.runs, options.postgres))
