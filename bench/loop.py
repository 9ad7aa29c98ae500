"""`loop` node benchmarks on embedded defaults (SQLite checkpoints). Prints a table.

    .venv/bin/python bench/loop.py [--items 100] [--latency 0.2] [--big 10000]

1. `--items` items at concurrency 5 through an AI node against the OpenAI-compatible
   stub answering after `--latency` s: ideal is items * latency / 5;
2. loop overhead per item: a loop over 200 items whose body is one pass-through
   transformer, against the same 200 transformer nodes run as a flat chain
   (the difference, per item, is what the loop adds beyond its body's nodes);
3. a `--big`-item loop with that body: wall time, and the process's peak RSS growth.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.openai_stub import OpenAIStub

from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings

PASS_THROUGH: dict[str, Any] = {"transform_type": "map"}


def looped(body: dict[str, Any], concurrency: int = 1) -> WorkflowDefinition:
    """loop over `input.rows` with a one-node body."""
    return WorkflowDefinition.model_validate(
        {
            "name": "loop",
            "nodes": [
                {
                    "id": "each",
                    "type": "loop",
                    "config": {"items": "{{ input.rows }}", "concurrency": concurrency},
                },
                {**body, "id": "body", "parent": "each"},
            ],
            "edges": [],
        }
    )


def chain(length: int) -> WorkflowDefinition:
    nodes = [{"id": f"t{i}", "type": "transformer", "config": PASS_THROUGH} for i in range(length)]
    edges = [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(length - 1)]
    return WorkflowDefinition.model_validate({"name": "chain", "nodes": nodes, "edges": edges})


async def timed(app: Any, workflow_id: str, inputs: dict[str, Any]) -> float:
    started = time.perf_counter()
    run, _ = await app.execute(workflow_id, inputs, wait=True)
    elapsed = time.perf_counter() - started
    assert run.status == "success", run.error
    return elapsed


async def llm_loop_seconds(settings: Settings, items: int) -> float:
    app = build(settings)
    await app.start()
    try:
        body = {"type": "ai-processor", "config": {"prompt": "{{ input.nonce }} item {{ item.v }}"}}
        wf = await app.create_workflow(looped(body, concurrency=5))
        # Warm-up: the LLM client and its connections, as a long-lived worker has them.
        await timed(app, wf.id, {"rows": [{"v": 0, "nonce": "warm"}]})
        nonce = str(time.time())  # distinct prompts: no cache hit
        return await timed(app, wf.id, {"rows": [{"v": i, "nonce": nonce} for i in range(items)]})
    finally:
        await app.close()


async def overhead_per_item(
    settings: Settings, items: int, repeats: int = 5
) -> tuple[float, float]:
    """(flat ms per node, loop ms per item), medians of `repeats` runs each."""
    app = build(settings)
    await app.start()
    try:
        flat = await app.create_workflow(chain(items))
        loop = await app.create_workflow(looped({"type": "transformer", "config": PASS_THROUGH}))
        # Each node (each item) passes the same small object on.
        rows = {"rows": [{"v": 1} for _ in range(items)]}
        await timed(app, flat.id, {"v": 1})
        await timed(app, loop.id, rows)
        flat_times = [await timed(app, flat.id, {"v": 1}) for _ in range(repeats)]
        loop_times = [await timed(app, loop.id, rows) for _ in range(repeats)]
        return (
            statistics.median(flat_times) * 1000 / items,
            statistics.median(loop_times) * 1000 / items,
        )
    finally:
        await app.close()


async def big_loop(settings: Settings, items: int) -> tuple[float, float]:
    """(seconds, peak RSS growth in MB) of one loop over `items` items."""
    app = build(settings)
    await app.start()
    try:
        loop = await app.create_workflow(looped({"type": "transformer", "config": PASS_THROUGH}))
        await timed(app, loop.id, {"rows": [{"v": 0}]})
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        seconds = await timed(app, loop.id, {"rows": [{"v": i} for i in range(items)]})
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return seconds, (after - before) / 1024
    finally:
        await app.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--big", type=int, default=10_000)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, OpenAIStub(latency=args.latency) as stub:
        base = {"llm_base_url": stub.base_url, "llm_api_key": "bench", "data_dir": Path(tmp)}
        ideal = args.items * args.latency / 5
        seconds = await llm_loop_seconds(
            Settings(**base, store_url=f"sqlite:///{tmp}/llm.db"), args.items
        )
        rows.append(
            (
                f"{args.items} items, concurrency 5, LLM latency {args.latency:g} s",
                f"{seconds:.2f} s",
                f"~ {ideal:.2f} s (items x latency / 5)",
            )
        )
        flat, per_item = await overhead_per_item(
            Settings(**base, store_url=f"sqlite:///{tmp}/overhead.db"), 200
        )
        rows.append(("flat chain, per transformer node", f"{flat:.3f} ms", ""))
        rows.append(("loop, per item (one transformer body)", f"{per_item:.3f} ms", ""))
        rows.append(
            ("loop overhead per item beyond its body", f"{per_item - flat:.3f} ms", "<= 0.3 ms")
        )
        seconds, rss = await big_loop(
            Settings(**base, store_url=f"sqlite:///{tmp}/big.db", max_run_output_bytes=512 * 2**20),
            args.big,
        )
        rows.append((f"{args.big}-item loop, one transformer body", f"{seconds:.2f} s", ""))
        rows.append(("  peak RSS growth", f"{rss:.0f} MB", ""))
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
