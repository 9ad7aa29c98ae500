"""Engine benchmarks on embedded defaults (SQLite checkpoints). Prints a table.

    .venv/bin/python bench/engine.py [--runs 200]

1. per-node overhead on a 40-node chain of transformer nodes (pass-through, then with two
   expressions each), and the cost of one render / evaluation;
2. runs per second of a 3-node workflow, in-process and through HTTP;
3. latency of a cached AI node (the whole node: render, cache hit, checkpoint);
4. a 5-branch fan-out of 0.5 s LLM calls (an OpenAI-compatible stub on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import timeit
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.report import print_measures
from tests.support.bench_workflows import THREE_NODE, transformer_chain
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub

from ductwork.engine import templating
from ductwork.engine.templating import compile_expression, compile_template
from ductwork.models import WorkflowDefinition
from ductwork.runtime import build
from ductwork.settings import Settings

PASS_THROUGH: dict[str, Any] = {"transform_type": "map"}
# Two expressions per node: what the template limits cost a node.
WITH_EXPRESSIONS: dict[str, Any] = {
    "transform_type": "compose",
    "mapping": {"v": "input.v + 1", "label": "'run ' ~ run.id"},
}


def chain(length: int, config: dict[str, Any] = PASS_THROUGH) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(transformer_chain(length, config))


THREE = WorkflowDefinition.model_validate(THREE_NODE)


def fanout(branches: int) -> WorkflowDefinition:
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}]
    edges = []
    for i in range(branches):
        nodes.append(
            {
                "id": f"ai{i}",
                "type": "ai-processor",
                "config": {"prompt": f"branch {i}: {{{{ q }}}}"},
            }
        )
        edges += [{"from": "start", "to": f"ai{i}"}, {"from": f"ai{i}", "to": "end"}]
    return WorkflowDefinition.model_validate({"name": "fanout", "nodes": nodes, "edges": edges})


async def per_node_overhead(
    settings: Settings, runs: int, config: dict[str, Any] = PASS_THROUGH
) -> tuple[float, float]:
    app = build(settings)
    await app.start()
    try:
        wf = await app.create_workflow(chain(40, config))
        await app.execute(wf.id, {"v": 1}, wait=True)  # warm-up: plan cache, connections
        sequential = []
        for _ in range(runs // 4):
            started = time.perf_counter()
            run, _ = await app.execute(wf.id, {"v": 1}, wait=True)
            assert run.status == "success", run.error
            sequential.append((time.perf_counter() - started) * 1000 / 40)
        started = time.perf_counter()
        results = await asyncio.gather(
            *(app.execute(wf.id, {"v": 1}, wait=True) for _ in range(runs // 4))
        )
        assert all(r.status == "success" for r, _ in results)
        loaded = (time.perf_counter() - started) * 1000 / (40 * len(results))
        return statistics.median(sequential), loaded
    finally:
        await app.close()


async def runs_per_second_in_process(settings: Settings, runs: int) -> float:
    app = build(settings)
    await app.start()
    try:
        wf = await app.create_workflow(THREE)
        await app.execute(wf.id, {"n": 1}, wait=True)
        started = time.perf_counter()
        batch = 16
        done = 0
        while done < runs:
            results = await asyncio.gather(
                *(app.execute(wf.id, {"n": i}, wait=True) for i in range(batch))
            )
            assert all(r.status == "success" for r, _ in results)
            done += batch
        return done / (time.perf_counter() - started)
    finally:
        await app.close()


async def runs_per_second_http(settings: Settings, runs: int) -> float:
    with LiveServer(settings) as server:
        async with server.async_client(timeout=60) as client:
            wf = (await client.post("/workflows/", json=THREE.dump())).json()["id"]

            async def one(i: int) -> None:
                response = await client.post(f"/workflows/{wf}/execute", json={"inputs": {"n": i}})
                assert response.json()["status"] == "success", response.text

            await one(0)
            started = time.perf_counter()
            batch = 16
            done = 0
            while done < runs:
                await asyncio.gather(*(one(i) for i in range(batch)))
                done += batch
            return done / (time.perf_counter() - started)


async def cached_ai_latency(settings: Settings, runs: int) -> tuple[float, float]:
    app = build(settings)
    await app.start()
    try:
        definition = WorkflowDefinition.model_validate(
            {
                "name": "ai",
                "nodes": [{"id": "ai1", "type": "ai-processor", "config": {"prompt": "Say hello"}}],
                "edges": [],
            }
        )
        wf = await app.create_workflow(definition)
        await app.execute(wf.id, {}, wait=True)  # fills the cache
        latencies = []
        for _ in range(runs):
            run, _ = await app.execute(wf.id, {}, wait=True)
            state = run.node_states["ai1"]
            assert state.cached and state.latency_ms is not None
            latencies.append(state.latency_ms)
        return statistics.median(latencies), statistics.quantiles(latencies, n=100)[98]
    finally:
        await app.close()


async def fanout_seconds(settings: Settings) -> tuple[float, float]:
    """(first run in a fresh process, median of later runs): the first one also builds
    the LLM client and opens its connections, which a long-lived worker has done."""
    app = build(settings)
    await app.start()
    try:
        wf = await app.create_workflow(fanout(5))
        times = []
        for i in range(6):
            started = time.perf_counter()
            # A distinct prompt each time: no cache hit.
            run, _ = await app.execute(wf.id, {"q": f"{time.time()}-{i}"}, wait=True)
            times.append(time.perf_counter() - started)
            assert run.status == "success", run.error
        return times[0], statistics.median(times[1:])
    finally:
        await app.close()


def template_costs(repeat: int = 2_000) -> list[tuple[str, str, str]]:
    """CPU µs per render and per evaluation (best of 10), and of the deadline alone."""
    template = compile_template("Hello {{ user.name }}, you have {{ n }} items")
    expression = compile_expression("value > 10 and status == 'active'")
    names = {"user": {"name": "Ann"}, "n": 3}
    item = {"value": 12, "status": "active"}

    def best(function: Any) -> float:
        # CPU time of this thread: a loaded machine's preemption does not count.
        timer = timeit.Timer(function, timer=time.thread_time)
        return min(timer.repeat(number=repeat, repeat=10)) / repeat * 1e6

    rows = [
        (
            "template render (2 values), CPU time",
            f"{best(lambda: template.render(names)):.2f} µs",
            "",
        ),
        ("expression evaluate, CPU time", f"{best(lambda: expression.evaluate(item)):.2f} µs", ""),
    ]
    watchdog = getattr(templating, "_WATCHDOG", None)
    if watchdog is not None:  # absent before the template limits

        def arm_disarm() -> None:
            watchdog.disarm(watchdog.arm(time.monotonic() + 10))

        rows.append(
            ("deadline arm + disarm (part of each), CPU time", f"{best(arm_disarm):.2f} µs", "")
        )
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as tmp, OpenAIStub() as stub:
        base = {"llm_base_url": stub.base_url, "llm_api_key": "bench", "data_dir": Path(tmp)}
        seq, loaded = await per_node_overhead(
            Settings(**base, store_url=f"sqlite:///{tmp}/a.db"), args.runs
        )
        rows.append(
            ("per-node overhead, 40-node chain, 1 run at a time", f"{seq:.3f} ms", "<= 1 ms")
        )
        rows.append(
            (
                f"per-node overhead, 40-node chain, {args.runs // 4} runs at once",
                f"{loaded:.3f} ms",
                "<= 1 ms",
            )
        )
        seq_t, loaded_t = await per_node_overhead(
            Settings(**base, store_url=f"sqlite:///{tmp}/a2.db"), args.runs, WITH_EXPRESSIONS
        )
        rows.append(
            (
                "per-node overhead, 40-node chain, 2 expressions each",
                f"{seq_t:.3f} ms",
                "<= 1 ms",
            )
        )
        rows.append(
            (
                f"  same, {args.runs // 4} runs at once",
                f"{loaded_t:.3f} ms",
                "<= 1 ms",
            )
        )
        rows.extend(template_costs())
        rps = await runs_per_second_in_process(
            Settings(**base, store_url=f"sqlite:///{tmp}/b.db"), args.runs
        )
        rows.append(("3-node runs per second, in-process (16 in flight)", f"{rps:.0f}", ""))
        rps_http = await runs_per_second_http(
            Settings(**base, store_url=f"sqlite:///{tmp}/c.db"), args.runs
        )
        rows.append(
            ("3-node runs per second, HTTP sync execute (16 in flight)", f"{rps_http:.0f}", "")
        )
        median, p99 = await cached_ai_latency(
            Settings(**base, store_url=f"sqlite:///{tmp}/d.db"), args.runs
        )
        rows.append(
            ("cached AI node latency (median / p99)", f"{median:.3f} / {p99:.3f} ms", "<= 1 ms")
        )
        stub.latency = 0.5
        cold, warm = await fanout_seconds(Settings(**base, store_url=f"sqlite:///{tmp}/e.db"))
        rows.append(("5-branch fan-out of 0.5 s LLM calls, first run", f"{cold:.3f} s", ""))
        rows.append(
            ("5-branch fan-out of 0.5 s LLM calls, warm (median)", f"{warm:.3f} s", "<= 0.6 s")
        )
    print_measures(rows)


if __name__ == "__main__":
    asyncio.run(main())
