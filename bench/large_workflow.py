"""Large workflows on embedded defaults (SQLite): validate, save and run. Prints a table.

    .venv/bin/python bench/large_workflow.py [--sizes 1000 10000]

Two chains of transformer nodes per size:

- plain: `map` nodes that pass their input on (no expressions), the graph alone;
- reading: each node composes `outputs.<previous>.v + 1`, so every node has an
  expression to compile, an `outputs.<id>` reference to check at save time and
  a distinct source (more than the compile caches hold at 10,000 nodes).

validate = the graph's checks (`build_plan`, templates compiled) on a parsed
definition; save = `create_workflow` (validate and store); run = a sync
`execute` from enqueue to the end (the run's first plan build included).
Event paging (issue 12): for the finished run, the time to read the first page of
its events (`GET .../events/page?limit=100`: `event_page` and the wire shape) against
reading the whole record with every event (`GET /workflows/executions/{id}`:
`get_run` and `run_view`), and the encoded sizes of both.
The compile caches are emptied before each phase, so every phase compiles
what it needs as it would for a workflow it has not seen, and a warm-up run
of a 10-node chain first pays the process's one-time costs. Each row is one
measurement: this is about scaling (time per node should not grow with the
chain), not about a tight median.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures

from ductwork.api.responses import dumps
from ductwork.engine.graph import build_plan
from ductwork.engine.references import template_references
from ductwork.engine.templating import compile_expression, compile_template
from ductwork.live import event_json
from ductwork.models import RunStatus, WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.views import run_view

PAGE = 100
"""Events on the first page (the web run view's page size)."""


def plain_chain(length: int) -> WorkflowDefinition:
    nodes: list[dict[str, Any]] = [
        {"id": f"t{i}", "type": "transformer", "config": {"transform_type": "map"}}
        for i in range(length)
    ]
    edges = [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(length - 1)]
    return WorkflowDefinition.model_validate(
        {"name": f"plain{length}", "nodes": nodes, "edges": edges}
    )


def reading_chain(length: int) -> WorkflowDefinition:
    nodes: list[dict[str, Any]] = [
        {
            "id": f"t{i}",
            "type": "transformer",
            "config": {
                "transform_type": "compose",
                "mapping": {"v": f"outputs.t{i - 1}.v + 1" if i else "v"},
            },
        }
        for i in range(length)
    ]
    edges = [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(length - 1)]
    return WorkflowDefinition.model_validate(
        {"name": f"reading{length}", "nodes": nodes, "edges": edges}
    )


def empty_compile_caches() -> None:
    """Forget compiled templates, expressions and their references (each is an lru_cache)."""
    for cached in (compile_expression, compile_template, template_references):
        clear = getattr(cached, "cache_clear", None)
        if clear is not None:
            clear()


async def paging(app: Any, execution_id: str) -> tuple[float, int, float, int, int]:
    """(first page s, its bytes, whole record s, its bytes, events) of a finished run."""
    started = time.perf_counter()
    page = await app.event_page(execution_id, 0, PAGE + 1)
    first = dumps({"events": [event_json(e) for e in page[:PAGE]], "next_after": PAGE})
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    run = await app.get_run(execution_id)
    whole = dumps(run_view(run))
    whole_s = time.perf_counter() - started
    return first_s, len(first), whole_s, len(whole), len(run.events)


async def measure(
    settings: Settings, definition: WorkflowDefinition
) -> tuple[float, float, float, float, tuple[float, int, float, int, int]]:
    """(validate s, save s, run s, run ms per node, paging) for one definition."""
    length = len(definition.nodes)
    app = build(settings)
    await app.start()
    try:
        # start() imports the LLM SDK on a thread; importing it here waits for that,
        # so the import does not compete with the first measurement.
        app.components.services.llm.preload()
        warm_up = await app.create_workflow(plain_chain(10))
        await app.execute(warm_up.id, {"v": 0}, wait=True, with_events=False)
        empty_compile_caches()
        started = time.perf_counter()
        build_plan(definition, app.registry)
        validated = time.perf_counter() - started
        empty_compile_caches()
        started = time.perf_counter()
        workflow = await app.create_workflow(definition)
        saved = time.perf_counter() - started
        empty_compile_caches()
        started = time.perf_counter()
        run, _ = await app.execute(
            workflow.id, {"v": 0}, wait=True, wait_seconds=3_600, with_events=False
        )
        ran = time.perf_counter() - started
        assert run.status is RunStatus.SUCCESS, run.error
        assert len(run.node_states) == length
        return validated, saved, ran, ran * 1000 / length, await paging(app, run.execution_id)
    finally:
        await app.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for flavour, make in (("plain", plain_chain), ("reading", reading_chain)):
            for size in args.sizes:
                settings = Settings(
                    data_dir=Path(tmp), store_url=f"sqlite:///{tmp}/{flavour}{size}.db"
                )
                validated, saved, ran, per_node, pages = await measure(settings, make(size))
                label = f"{size:,}-node {flavour} chain"
                rows.append((f"{label}: validate", f"{validated:.3f} s", ""))
                rows.append((f"{label}: save (validate + store)", f"{saved:.3f} s", ""))
                rows.append((f"{label}: run", f"{ran:.3f} s", ""))
                rows.append((f"{label}: run per node", f"{per_node:.3f} ms", "flat in size"))
                first_s, first_bytes, whole_s, whole_bytes, events = pages
                rows.append(
                    (
                        f"{label}: first {PAGE} of {events:,} events",
                        f"{first_s * 1000:.1f} ms, {first_bytes / 1024:.0f} KiB",
                        "flat in size",
                    )
                )
                rows.append(
                    (
                        f"{label}: whole record with every event",
                        f"{whole_s * 1000:.1f} ms, {whole_bytes / 1024:.0f} KiB",
                        "",
                    )
                )
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
