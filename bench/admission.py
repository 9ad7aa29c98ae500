"""Concurrency limits (engine/admission.py) on embedded defaults (SQLite). Prints a table.

    .venv/bin/python bench/admission.py [--runs 200]

1. what the admission hook costs a run without limits: `AdmissionControl.admit` alone,
   and runs per second of a 3-node workflow with the hook switched off (as before
   the limits existed) and on;
2. runs per second of the same workflow under a limit it never reaches (every run
   pays one `Store.admit_run`), and one `admit_run` on its own.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.bench_workflows import THREE_NODE

from ductwork.models import Run, RunStatus, WorkflowDefinition, WorkflowSettings, utcnow
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings

THREE = THREE_NODE


async def runs_per_second(app: Ductwork, limit: int | None, runs: int) -> float:
    definition = WorkflowDefinition.model_validate(
        {**THREE, "settings": WorkflowSettings(max_concurrent_runs=limit).model_dump()}
    )
    wf = await app.create_workflow(definition)
    await app.execute(wf.id, {"n": 1}, wait=True)  # warm-up: plan cache, connections
    started = time.perf_counter()
    batch = 16
    done = 0
    while done < runs:
        results = await asyncio.gather(
            *(app.execute(wf.id, {"n": 1}, wait=True) for _ in range(batch))
        )
        assert all(run.status is RunStatus.SUCCESS for run, _ in results)
        done += batch
    return done / (time.perf_counter() - started)


async def admit_hook_us(app: Ductwork, rounds: int = 20_000) -> float:
    """Microseconds of `admit` for a queued run without limits (no store call)."""
    definition = WorkflowDefinition.model_validate(THREE)
    run = Run(
        execution_id="bench",
        workflow_id="bench",
        workflow_version=1,
        definition=definition,
        created_at=utcnow(),
    )
    admission = app.admission
    started = time.perf_counter()
    for _ in range(rounds):
        await admission.admit(run, "owner")
        await admission.after_advance(run.execution_id, RunStatus.SUCCESS)
    return (time.perf_counter() - started) * 1e6 / rounds


async def admit_run_ms(app: Ductwork, rounds: int = 200) -> float:
    """Median milliseconds of one `Store.admit_run` that admits (SQLite)."""
    definition = WorkflowDefinition.model_validate(THREE)
    times = []
    for i in range(rounds):
        run = Run(
            execution_id=f"admit-{i}",
            workflow_id="bench-admit",
            workflow_version=1,
            definition=definition,
            created_at=utcnow(),
        )
        await app.store.create_run(run)
        started = time.perf_counter()
        admission = await app.store.admit_run(run.execution_id, 100_000, None)
        times.append((time.perf_counter() - started) * 1000)
        assert admission.admitted
    return statistics.median(times)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        app = build(Settings(data_dir=Path(directory)))
        await app.start()
        try:
            hook = await admit_hook_us(app)
            # Alternated, best of three each: the machine's load drifts between rounds.
            admission = app.executor.admission
            before = after = limited = 0.0
            for _ in range(3):
                app.executor.admission = None
                before = max(before, await runs_per_second(app, None, runs))
                app.executor.admission = admission
                after = max(after, await runs_per_second(app, None, runs))
                limited = max(limited, await runs_per_second(app, 100_000, runs))
            admit = await admit_run_ms(app)
        finally:
            await app.close()
    print_measures(
        [
            ("admit() of a run without limits", f"{hook:.2f} µs", "a few µs (no store call)"),
            ("runs/s, no limit, hook off (before)", f"{before:.0f}", "reference"),
            ("runs/s, no limit, hook on (after)", f"{after:.0f}", "within noise of before"),
            ("runs/s, limit never reached", f"{limited:.0f}", "pays admit_run + 2 reads a run"),
            ("Store.admit_run (SQLite, median)", f"{admit:.3f} ms", "~1 ms (a write transaction)"),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=200)
    asyncio.run(main(parser.parse_args().runs))
