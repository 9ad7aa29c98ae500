"""Pruning while runs execute: how fast runs are deleted, and what live traffic feels.

    .venv/bin/python bench/retention.py [--runs 20000] [--batch-size 500] [--rule days|runs]
                                        [--store-url URL]

Seeds `--runs` finished runs 60 days old (3 node states and 6 events each) into
one store (a temporary SQLite file by default), then measures the latency of a
small workflow's sync execute (start -> transformer -> end) on its own, and again
while `Pruner.prune_once` deletes every seeded run (DUCTWORK_RETENTION_DAYS=30)
in batches of `--batch-size` (`--rule runs`: DUCTWORK_RETENTION_RUNS=1 instead, which
ranks every finished run per batch, and also prunes the live workflow's older runs).
Executes run back to back on the same event loop as the pruning, so a batch that
held the loop (SQLite's connection is used on it) shows in their p99.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.models import (
    Event,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    WorkflowDefinition,
    utcnow,
)
from ductwork.pruning import Pruner
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings

SMALL = {
    "name": "live",
    "nodes": [
        {"id": "start", "type": "start"},
        {
            "id": "shape",
            "type": "transformer",
            "config": {"transform_type": "compose", "mapping": {"n": "1"}},
        },
        {"id": "end", "type": "end"},
    ],
    "edges": [{"from": "start", "to": "shape"}, {"from": "shape", "to": "end"}],
}


async def seed(app: Ductwork, count: int) -> None:
    """`count` finished runs, 60 days old, each with 3 node states and 6 events."""
    old = utcnow() - timedelta(days=60)
    definition = WorkflowDefinition.model_validate(SMALL)
    state = NodeState(status=NodeStatus.COMPLETED, output={"n": 1}, attempts=1)
    for index in range(count):
        created = old + timedelta(milliseconds=index)
        await app.store.create_run(
            Run(
                execution_id=str(uuid.uuid4()),
                workflow_id="seeded",
                workflow_version=1,
                status=RunStatus.SUCCESS,
                definition=definition,
                created_at=created,
                end_time=created,
                node_states={node: state for node in ("start", "shape", "end")},
                events=[
                    Event(seq=seq, type="log", node_id="shape", timestamp=created, data={"i": seq})
                    for seq in range(1, 7)
                ],
            )
        )


async def execute_latencies(
    app: Ductwork, workflow_id: str, until: asyncio.Future[int] | None, count: int
) -> list[float]:
    """Seconds per sync execute, back to back: `count` of them, or until `until` is done."""
    latencies = []
    while (until is None and len(latencies) < count) or (until is not None and not until.done()):
        start = time.perf_counter()
        run, _ = await app.execute(workflow_id, {}, wait=True, with_events=False)
        latencies.append(time.perf_counter() - start)
        assert run.status is RunStatus.SUCCESS, run.error
    return latencies


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            store_url=args.store_url,
            retention_days=30 if args.rule == "days" else None,
            retention_runs=1 if args.rule == "runs" else None,
            prune_batch_size=args.batch_size,
        )
        app = build(settings, role="isolated")  # no background sweep: this script prunes
        await app.start()
        try:
            workflow = await app.create_workflow(WorkflowDefinition.model_validate(SMALL))
            started = time.perf_counter()
            await seed(app, args.runs)
            seeded_in = time.perf_counter() - started
            await execute_latencies(app, workflow.id, None, 50)  # warm up
            alone = await execute_latencies(app, workflow.id, None, 300)

            pruner = Pruner(app.store, settings)
            started = time.perf_counter()
            pruning = asyncio.ensure_future(pruner.prune_once())
            during = await execute_latencies(app, workflow.id, pruning, 0)
            deleted = await pruning
            took = time.perf_counter() - started
        finally:
            await app.close()

    store = args.store_url or "sqlite (temporary file)"
    print(
        f"store: {store}; {args.runs} runs seeded in {seeded_in:.1f} s; "
        f"batch {args.batch_size}; rule {args.rule}"
    )
    print_measures(
        [
            ("runs deleted", f"{deleted}", f">= {args.runs - 1}"),
            (
                "runs deleted per second",
                f"{deleted / took:,.0f}",
                "> 1,000 (pausing half the time)",
            ),
            ("execute p50 alone (ms)", f"{statistics.median(alone) * 1000:.2f}", "-"),
            ("execute p99 alone (ms)", f"{p(alone, 0.99) * 1000:.2f}", "-"),
            ("executes during pruning", f"{len(during)}", "> 0 (not starved)"),
            ("execute p50 while pruning (ms)", f"{statistics.median(during) * 1000:.2f}", "-"),
            (
                "execute p99 while pruning (ms)",
                f"{p(during, 0.99) * 1000:.2f}",
                "< p99 alone + one batch",
            ),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--store-url", default=None, help="Default: a temporary SQLite file.")
    parser.add_argument(
        "--rule",
        choices=("days", "runs"),
        default="days",
        help="days: DUCTWORK_RETENTION_DAYS=30; runs: DUCTWORK_RETENTION_RUNS=1 (ranks runs).",
    )
    asyncio.run(main(parser.parse_args()))
