"""What error workflows cost, on embedded defaults (SQLite) or a store URL. Prints a table.

    .venv/bin/python bench/error_workflows.py [--runs 200] [--store-url postgresql://...]

1. from a run's failure (its `end_time`) to its error workflow's run existing (the
   error run's `created_at`): the fast path in the process that failed it;
2. failed runs per second with and without an `error_workflow_id` (the outbox flag
   rides in the failing commit; starting the error run adds a read, an insert and
   one more commit to the failed run);
3. the sweep's share: one `error_workflow_pending` query when nothing is flagged, and
   the time per run to settle a backlog a dead worker left flagged.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.models import RunStatus, WorkflowDefinition
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from ductwork.store.base import RunQuery


def failing(error_workflow_id: str | None) -> WorkflowDefinition:
    """start -> t -> end, where end reads an input the run does not have: it fails."""
    body: dict[str, Any] = {
        "name": "fails",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "t", "type": "transformer", "config": {"transform_type": "map"}},
            {"id": "end", "type": "end", "config": {"output": "{{ missing }}"}},
        ],
        "edges": [{"from": "start", "to": "t"}, {"from": "t", "to": "end"}],
    }
    if error_workflow_id is not None:
        body["error_workflow_id"] = error_workflow_id
    return WorkflowDefinition.model_validate(body)


HANDLER = WorkflowDefinition.model_validate(
    {
        "name": "on failure",
        "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
        "edges": [{"from": "start", "to": "end"}],
    }
)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def p99(values: list[float]) -> float:
    return sorted(values)[max(0, round(len(values) * 0.99) - 1)]


async def failed_runs_per_second(app: Ductwork, workflow_id: str, runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        run, _ = await app.execute(workflow_id, wait=True)
        assert run.status is RunStatus.ERROR
    return runs / (time.perf_counter() - started)


async def measure(settings: Settings, runs: int) -> list[tuple[str, str, str]]:
    app = build(settings)
    await app.start()
    try:
        handler = await app.create_workflow(HANDLER)
        plain = await app.create_workflow(failing(None))
        reported = await app.create_workflow(failing(handler.id))
        await failed_runs_per_second(app, reported.id, 10)  # warm up plans and connections

        without = await failed_runs_per_second(app, plain.id, runs)
        with_error = await failed_runs_per_second(app, reported.id, runs)

        delays = []
        for error_run in await app.store.find_runs(
            RunQuery(workflow_id=handler.id), limit=runs + 10
        ):
            failed = await app.store.get_run(error_run.variables["execution_id"], with_events=False)
            assert failed is not None and failed.end_time is not None
            delays.append((error_run.created_at - failed.end_time).total_seconds())

        idle = []
        for _ in range(50):
            started = time.perf_counter()
            await app.error_workflows.sweep()
            idle.append(time.perf_counter() - started)

    finally:
        await app.close()

    # A backlog: runs failed by a process that died before starting their error runs.
    # An app that neither consumes nor sweeps by itself fails them through its executor.
    backlog = min(runs, 100)
    quiet = build(settings)
    await quiet.store.start()
    try:
        for _ in range(backlog):
            run, _ = await quiet.execute(reported.id)
            await quiet.executor.advance(run.execution_id)
        started = time.perf_counter()
        settled = await quiet.error_workflows.sweep(limit=backlog)
        drain = time.perf_counter() - started
        assert len(settled) == backlog
    finally:
        await quiet.close()
    return [
        ("failure -> error run created, median", ms(statistics.median(delays)), "fast path"),
        ("failure -> error run created, p99", ms(p99(delays)), ""),
        ("failed runs/s, no error workflow", f"{without:.0f}", ""),
        ("failed runs/s, with error workflow", f"{with_error:.0f}", "error runs run too"),
        ("sweep, nothing flagged (median)", ms(statistics.median(idle)), "one indexed query"),
        (f"sweep settling {backlog} flagged runs, per run", ms(drain / backlog), ""),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(data_dir=Path(directory), store_url=args.store_url)
        print_measures(asyncio.run(measure(settings, args.runs)))


if __name__ == "__main__":
    main()
