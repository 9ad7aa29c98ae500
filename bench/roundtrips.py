"""Store statements and commits per synchronous 3-node run, embedded (SQLite), in-process.

    PYTHONPATH=src .venv/bin/python bench/roundtrips.py [--runs 300] [--trace]

Counts the SQLite statements of one `execute(..., wait=True)` (the sweep is kept
out of the way), then the process CPU time per run over `--runs` runs, five times
(median and minimum: CPU time, so a loaded machine moves it less than wall clock).
`--trace` prints the statements of the counted run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.report import print_measures
from tests.support.bench_workflows import THREE_NODE

from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings


async def main(runs: int, trace: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(Settings(data_dir=Path(tmp), sweep_interval_seconds=3600))
        await app.start()
        try:
            workflow = await app.create_workflow(WorkflowDefinition.model_validate(THREE_NODE))
            for _ in range(50):  # warm: plans, statements, caches
                await app.execute(workflow.id, {"n": 1}, wait=True)
            db = app.store._backend._db  # type: ignore[attr-defined]
            statements: list[str] = []
            db.set_trace_callback(statements.append)
            try:
                await app.execute(workflow.id, {"n": 1}, wait=True)
            finally:
                db.set_trace_callback(None)
            if trace:
                for sql in statements:
                    print("   ", sql[:120].replace("\n", " "))
            kinds = collections.Counter(sql.split()[0].upper() for sql in statements)
            samples = []
            for _ in range(5):
                started = time.process_time()
                for _ in range(runs):
                    await app.execute(workflow.id, {"n": 1}, wait=True)
                samples.append((time.process_time() - started) / runs * 1000)
            print_measures(
                [
                    ("store statements per synchronous 3-node run", str(len(statements)), ""),
                    *((f"  {kind}", str(count), "") for kind, count in sorted(kinds.items())),
                    (
                        "CPU ms per run (median of 5 rounds; min)",
                        f"{statistics.median(samples):.3f}; {min(samples):.3f}",
                        "",
                    ),
                ]
            )
        finally:
            await app.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--trace", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.runs, arguments.trace))
