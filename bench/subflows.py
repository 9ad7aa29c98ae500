"""What a `sub-workflow` call and a `merge` cost, on embedded defaults (SQLite) or a
store URL. Prints a table.

    .venv/bin/python bench/subflows.py [--runs 100] [--store-url postgresql://...]

1. a run of start -> transformer -> end, and the same transformer in a child run
   called by a sync `sub-workflow` node (the difference is a child run: an insert,
   its commits and the wait);
2. an async call (the node returns once the child is stored and queued);
3. a fan-out of 8 branches joined by `merge` (wait_all, by_key) against 8 branches
   joined by an `end` node reading them all.
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

import itertools

from bench.report import print_measures

from ductwork.models import RunStatus, WorkflowDefinition
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings

BRANCHES = 8


def workflow(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {"name": "bench", "nodes": nodes, "edges": [{"from": a, "to": b} for a, b in edges]}
    )


def chain(*middle: dict[str, Any]) -> WorkflowDefinition:
    nodes = [{"id": "start", "type": "start"}, *middle, {"id": "end", "type": "end"}]
    ids = [node["id"] for node in nodes]
    return workflow(nodes, list(itertools.pairwise(ids)))


def fan_out(joiner: dict[str, Any]) -> WorkflowDefinition:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}, joiner]
    edges = []
    for index in range(BRANCHES):
        nodes.append(
            {
                "id": f"b{index}",
                "type": "transformer",
                "config": {"expression": f"[{{'id': {index % 3}, 'b{index}': {index}}}]"},
            }
        )
        edges += [("start", f"b{index}"), (f"b{index}", joiner["id"])]
    return workflow(nodes, edges)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


async def latencies(app: Ductwork, workflow_id: str, runs: int) -> list[float]:
    spans = []
    for _ in range(runs):
        started = time.perf_counter()
        run, _ = await app.execute(workflow_id, {"n": 1}, wait=True)
        spans.append(time.perf_counter() - started)
        assert run.status is RunStatus.SUCCESS, run.error
    return spans


async def measure(settings: Settings, runs: int) -> list[tuple[str, str, str]]:
    app = build(settings)
    await app.start()
    try:
        work = {"id": "t", "type": "transformer", "config": {"expression": "n + 1"}}
        plain = await app.create_workflow(chain(work))
        call = {"id": "call", "type": "sub-workflow", "config": {"workflow_id": plain.id}}
        sync_parent = await app.create_workflow(
            chain({**call, "config": {**call["config"], "inputs": {"n": "{{ n }}"}}})
        )
        async_parent = await app.create_workflow(
            chain({**call, "config": {**call["config"], "mode": "async", "inputs": {"n": 1}}})
        )
        all_end = await app.create_workflow(fan_out({"id": "end", "type": "end"}))
        wait_all = await app.create_workflow(fan_out({"id": "m", "type": "merge"}))
        by_key = await app.create_workflow(
            fan_out({"id": "m", "type": "merge", "config": {"mode": "by_key", "key": "id"}})
        )
        for workflow_id in (plain.id, sync_parent.id, all_end.id):
            await latencies(app, workflow_id, 5)  # warm up plans and connections
        rows = {
            name: statistics.median(await latencies(app, workflow_id, runs))
            for name, workflow_id in (
                ("plain", plain.id),
                ("sync", sync_parent.id),
                ("async", async_parent.id),
                ("end", all_end.id),
                ("wait_all", wait_all.id),
                ("by_key", by_key.id),
            )
        }
        # Let the async children finish before the app closes.
        await asyncio.sleep(0.5)
    finally:
        await app.close()
    return [
        ("run start -> t -> end, median", ms(rows["plain"]), ""),
        ("same t in a sync child run, median", ms(rows["sync"]), "about 2x plain"),
        ("sync call overhead, median", ms(rows["sync"] - rows["plain"]), "one more run"),
        ("async call (child queued), median", ms(rows["async"]), "under sync"),
        (f"{BRANCHES} branches -> end, median", ms(rows["end"]), ""),
        (f"{BRANCHES} branches -> merge wait_all, median", ms(rows["wait_all"]), "about end"),
        (f"{BRANCHES} branches -> merge by_key, median", ms(rows["by_key"]), "about end"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--store-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(data_dir=Path(directory), store_url=args.store_url)
        print_measures(asyncio.run(measure(settings, args.runs)))


if __name__ == "__main__":
    main()
