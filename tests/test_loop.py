"""The `loop` node on the embedded engine: items, order, concurrency, errors, retries,
per-item states and events, and the save-time rules of loop bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ductwork.engine.graph import build_plan
from ductwork.engine.limits import WorkflowLimits
from ductwork.engine.loop import rerun_on_retry
from ductwork.models import (
    Checkpoint,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    ValidationIssue,
    WorkflowDefinition,
    utcnow,
)
from ductwork.nodes.registry import REGISTRY
from ductwork.settings import Settings
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually

RUN_WAIT = 30.0
"""Seconds a test waits for a run to end: a deadline for a stuck run, not a speed check."""


def probe(node_id: str, parent: str | None = None, **config: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"id": node_id, "type": "probe", "config": config}
    if parent is not None:
        spec["parent"] = parent
    return spec


def loop(node_id: str = "loop", **config: Any) -> dict[str, Any]:
    config.setdefault("items", "{{ input.rows }}")
    return {"id": node_id, "type": "loop", "config": config}


def looped(
    body: list[dict[str, Any]],
    body_edges: list[tuple[str, str]] | None = None,
    **config: Any,
) -> WorkflowDefinition:
    """start -> loop (with `body`) -> end."""
    return definition(
        [{"id": "start", "type": "start"}, loop(**config), *body, {"id": "end", "type": "end"}],
        [("start", "loop"), ("loop", "end"), *(body_edges or [])],
    )


async def test_items_run_through_the_body_in_order_with_per_item_states(tmp_path: Path) -> None:
    node = ProbeNode()
    body = [
        probe("times", "loop", output="{{ item * 10 }}", sleep=0.0),
        probe(
            "plus",
            "loop",
            output="{{ [outputs.times + index, input, loop.count, outputs.start.tag] }}",
        ),
    ]
    rows = [5, 1, 4, 2, 3]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(
            looped(body, [("times", "plus")], concurrency=3), {"rows": rows, "tag": "t"}
        )
    assert run.status is RunStatus.SUCCESS, run.error
    expected = [[r * 10 + i, r * 10, 5, "t"] for i, r in enumerate(rows)]
    assert run.result == expected
    assert run.node_states["loop"].output == expected
    for index, row in enumerate(rows):
        assert run.node_states[f"times[{index}]"].output == row * 10
        assert run.node_states[f"plus[{index}]"].status is NodeStatus.COMPLETED
        assert run.node_states[f"loop[{index}]"].output == expected[index]
    assert "times" not in run.node_states and "plus" not in run.node_states
    completed = {e.node_id for e in run.events if e.type == "node_completed"}
    assert {"plus[3]", "times[0]", "loop[4]", "loop"} <= completed
    assert node.calls[(run.execution_id, "times[2]")] == 1


async def test_concurrency_bounds_items_in_flight(tmp_path: Path) -> None:
    node = ProbeNode()
    # Each probe waits until three run at once: a loop running fewer would fail them.
    body = [probe("p", "loop", together=3)]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(looped(body, concurrency=3), {"rows": list(range(9))})
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == list(range(9))
    assert node.peak_running[run.execution_id] == 3


async def test_concurrency_one_runs_items_one_after_another(tmp_path: Path) -> None:
    node = ProbeNode()
    body = [probe("p", "loop", sleep=0.01)]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(looped(body), {"rows": [1, 2, 3]})
    assert run.status is RunStatus.SUCCESS, run.error
    assert node.peak_running[run.execution_id] == 1


FAIL_ITEM_2 = probe("p", "loop", fatal="{{ item == 2 }}", output="{{ item }}")


async def test_on_item_error_fail_names_item_and_node(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(looped([FAIL_ITEM_2]), {"rows": [0, 1, 2, 3]})
    assert run.status is RunStatus.ERROR
    assert run.error is not None and "item 2 failed at node p: fatal failure" in run.error
    assert run.node_states["loop[2]"].status is NodeStatus.FAILED
    assert run.node_states["p[2]"].status is NodeStatus.FAILED
    assert "loop[3]" not in run.node_states  # items after the failure never started
    assert any(e.type == "node_failed" and e.node_id == "p[2]" for e in run.events)


async def test_on_item_error_continue_puts_null(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(
            looped([FAIL_ITEM_2], on_item_error="continue", concurrency=2), {"rows": [0, 1, 2, 3]}
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == [0, 1, None, 3]


async def test_on_item_error_collect_lists_errors(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(
            looped([FAIL_ITEM_2], on_item_error="collect"), {"rows": [0, 1, 2, 3]}
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == {
        "results": [0, 1, None, 3],
        "errors": [{"index": 2, "node_id": "p", "error": "fatal failure"}],
    }


async def test_max_items_and_non_list_fail_naming_the_field(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        long = await app.execute_definition(
            looped([probe("p", "loop")], max_items=2), {"rows": [1, 2, 3]}
        )
        not_list = await app.execute_definition(looped([probe("p", "loop")]), {"rows": {"a": 1}})
    assert long.status is RunStatus.ERROR
    assert long.error is not None and "config.items: 3 items; the limit is 2" in long.error
    assert not_list.status is RunStatus.ERROR
    assert not_list.error is not None and "config.items" in not_list.error
    async with embedded(tmp_path, extra_nodes=[node], max_loop_items=2) as app:
        past_setting = await app.execute_definition(
            looped([probe("p", "loop")]), {"rows": [1, 2, 3]}
        )
    assert past_setting.error is not None
    assert "config.items: 3 items; the limit is 2 (DUCTWORK_MAX_LOOP_ITEMS)" in past_setting.error
    assert not node.calls


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mongodb"])
async def test_retry_reruns_only_the_failed_item(
    tmp_path: Path, kind: str, store_url_factory: Callable[[str], str]
) -> None:
    node = ProbeNode()
    # p fails the first time it runs for item 2 (calls are counted per `p[2]`).
    body = [probe("a", "loop"), probe("p", "loop", fail_times="{{ 1 if item == 2 else 0 }}")]
    store_url = store_url_factory(kind)
    async with embedded(tmp_path, extra_nodes=[node], store_url=store_url) as app:
        wf = await app.create_workflow(looped(body, [("a", "p")]))
        failed, _ = await app.execute(wf.id, {"rows": [0, 1, 2, 3]}, wait=True)
        assert failed.status is RunStatus.ERROR
        await app.retry(failed.execution_id)
        final = await app.wait_for(failed.execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.result == [0, 1, 2, 3]
    assert final.node_states["loop[2]"].status is NodeStatus.COMPLETED
    calls = {key: n for (run, key), n in node.calls.items() if run == failed.execution_id}
    assert calls == {
        "a[0]": 1,
        "p[0]": 1,
        "a[1]": 1,
        "p[1]": 1,
        "a[2]": 1,  # completed in the failed item: kept, not run again
        "p[2]": 2,
        "a[3]": 1,
        "p[3]": 1,
    }


async def test_cancelling_a_run_cancels_the_items_in_flight(tmp_path: Path) -> None:
    node = ProbeNode()
    body = [probe("p", "loop", hold=True)]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        wf = await app.create_workflow(looped(body, concurrency=2))
        run, _ = await app.execute(wf.id, {"rows": [1, 2, 3]}, wait=False)
        await eventually(lambda: node.peak_running.get(run.execution_id, 0) == 2)
        await app.cancel(run.execution_id)
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert final.status is RunStatus.CANCELLED
    assert final.node_states["loop"].status is NodeStatus.CANCELLED
    assert final.node_states["p[0]"].status is NodeStatus.CANCELLED
    assert final.node_states["p[1]"].status is NodeStatus.CANCELLED
    assert "p[2]" not in final.node_states and "loop[0]" not in final.node_states
    assert node.cancelled == {(run.execution_id, "p[0]"), (run.execution_id, "p[1]")}


async def test_a_loop_cut_short_resumes_its_unfinished_items_only(tmp_path: Path) -> None:
    """As a dead worker leaves it: item 0 recorded, item 1 with a completed and a
    cancelled body node, item 2 with its first node running. Driving the run again runs
    what did not complete, and nothing else."""
    node = ProbeNode()
    wf = looped([probe("a", "loop"), probe("b", "loop")], [("a", "b")], concurrency=3)
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        now = utcnow()
        run = await app.store.create_run(
            Run(
                execution_id="cut-loop",
                workflow_id="wf",
                workflow_version=1,
                definition=wf,
                created_at=now,
                status=RunStatus.RUNNING,
                start_time=now,
                variables={"rows": [10, 11, 12]},
            )
        )
        done = NodeStatus.COMPLETED
        await app.store.checkpoint(
            run.execution_id,
            Checkpoint(
                node_states={
                    "start": NodeState(status=done, output={"rows": [10, 11, 12]}, attempts=1),
                    "loop": NodeState(status=NodeStatus.RUNNING, attempts=1, started_at=now),
                    "a[0]": NodeState(status=done, output=10, attempts=1),
                    "b[0]": NodeState(status=done, output=10, attempts=1),
                    "loop[0]": NodeState(status=done, output=10, attempts=1),
                    "a[1]": NodeState(status=done, output=11, attempts=1),
                    "b[1]": NodeState(status=NodeStatus.CANCELLED, attempts=1),
                    "a[2]": NodeState(status=NodeStatus.RUNNING, attempts=1, started_at=now),
                }
            ),
        )
        await app.executor.advance(run.execution_id)
        final = await app.get_run(run.execution_id)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.result == [10, 11, 12]
    calls = {key: n for (run_id, key), n in node.calls.items() if run_id == "cut-loop"}
    assert calls == {"b[1]": 1, "a[2]": 1, "b[2]": 1}
    assert final.node_states["a[2]"].attempts == 2


async def test_nested_loops(tmp_path: Path) -> None:
    node = ProbeNode()
    nodes = [
        {"id": "start", "type": "start"},
        loop("outer"),
        {"id": "inner", "type": "loop", "config": {"items": "{{ item }}"}, "parent": "outer"},
        probe("p", "inner", output="{{ item * 2 }}"),
    ]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(
            definition(nodes, [("start", "outer")]), {"rows": [[1, 2], [3]]}
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["outer"].output == [[2, 4], [6]]
    assert run.node_states["p[0][1]"].output == 4
    assert run.node_states["inner[1]"].output == [6]
    assert run.node_states["inner[1][0]"].output == 6


async def test_outputs_whole_is_a_plain_dict_at_the_top_and_in_a_body(tmp_path: Path) -> None:
    # `{{ outputs }}` is kept as an output, serialised and printed like any dict: in a
    # body too (its scope chains the outer outputs), and without containing itself.
    node = ProbeNode()
    nodes = [
        {"id": "start", "type": "start"},
        probe("top", output="{{ outputs }}"),
        loop(items="{{ outputs.start.rows }}"),
        probe("whole", "loop", output="{{ outputs }}"),
        probe("text", "loop", output="{{ outputs | tojson }}"),
    ]
    edges = [("start", "top"), ("top", "loop"), ("whole", "text")]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await asyncio.wait_for(
            app.execute_definition(definition(nodes, edges), {"rows": [7]}), RUN_WAIT
        )
    assert run.status is RunStatus.SUCCESS, run.error
    start = {"rows": [7]}
    top = {"start": start}
    assert run.node_states["top"].output == top
    assert run.node_states["whole[0]"].output == {"start": start, "top": top}
    assert orjson.loads(run.node_states["text[0]"].output) == {
        "start": start,
        "top": top,
        "whole": {"start": start, "top": top},
    }


async def test_a_long_delay_in_a_body_fails_its_item(tmp_path: Path) -> None:
    body = [{"id": "d", "type": "delay", "config": {"delay_seconds": 60}, "parent": "loop"}]
    async with embedded(tmp_path, durable_delay_threshold_seconds=1) as app:
        run = await app.execute_definition(looped(body), {"rows": [1]})
    assert run.status is RunStatus.ERROR
    assert run.error is not None and "cannot park the run" in run.error


def stored_output_bytes(run: Run) -> int:
    """What a run's stored node states hold in outputs (JSON bytes), records included."""
    return sum(
        len(orjson.dumps(state.output))
        for state in run.node_states.values()
        if state.output is not None
    )


BIG = "x" * 40
"""A body output of 42 JSON bytes: with DUCTWORK_MAX_RUN_OUTPUT_BYTES 250, two items'
outputs and records fit, a third item's do not."""


def start_loop_big() -> WorkflowDefinition:
    """start -> loop whose body node `p` outputs BIG once per item, one item at a time."""
    return definition(
        [{"id": "start", "type": "start"}, loop(concurrency=1), probe("p", "loop", output=BIG)],
        [("start", "loop")],
    )


async def test_item_records_count_towards_the_run_output_cap(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], max_run_output_bytes=250) as app:
        run = await app.execute_definition(start_loop_big(), {"rows": [0, 1, 2]})
    assert run.status is RunStatus.ERROR
    assert stored_output_bytes(run) <= 250
    assert "DUCTWORK_MAX_RUN_OUTPUT_BYTES" in (run.node_states["loop[2]"].error or "")
    assert "item 2 failed at node loop" in (run.error or "")


async def test_a_resumed_loop_counts_the_outputs_stored_before_the_crash(tmp_path: Path) -> None:
    """A worker died after items 0 and 1: their body outputs and records are stored. The
    drive that resumes the run counts them, so it cannot store another full cap."""
    async with embedded(tmp_path, extra_nodes=[ProbeNode()], max_run_output_bytes=250) as app:
        now = utcnow()
        run = await app.store.create_run(
            Run(
                execution_id="cut-big-loop",
                workflow_id="wf",
                workflow_version=1,
                definition=start_loop_big(),
                created_at=now,
                status=RunStatus.RUNNING,
                start_time=now,
                variables={"rows": [0, 1, 2]},
            )
        )
        done = NodeStatus.COMPLETED
        stored = {
            "start": NodeState(status=done, output={"rows": [0, 1, 2]}, attempts=1),
            "loop": NodeState(status=NodeStatus.RUNNING, attempts=1, started_at=now),
            **{
                f"{key}[{index}]": NodeState(status=done, output=BIG, attempts=1)
                for key in ("p", "loop")
                for index in (0, 1)
            },
        }
        await app.store.checkpoint(run.execution_id, Checkpoint(node_states=stored))
        await app.executor.advance(run.execution_id)
        final = await app.get_run(run.execution_id)
    assert final.status is RunStatus.ERROR
    assert stored_output_bytes(final) <= 250
    assert "DUCTWORK_MAX_RUN_OUTPUT_BYTES" in (final.error or "")


# Save-time rules ----------------------------------------------------------------------


def issues_of(nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> list[ValidationIssue]:
    registry = {**REGISTRY, "probe": ProbeNode()}
    limits = WorkflowLimits.from_settings(Settings(max_loop_concurrency=8, max_loop_items=100))
    try:
        build_plan(definition(nodes, edges), registry, limits)
    except Exception as exc:
        return list(getattr(exc, "issues", []))
    return []


BASE = [{"id": "start", "type": "start"}, loop(), probe("b", "loop"), probe("after")]


@pytest.mark.parametrize(
    ("nodes", "edges", "node_id", "field", "fragment"),
    [
        (BASE, [("start", "loop"), ("start", "b")], "start", "edges[1]", "crosses the boundary"),
        (BASE, [("start", "loop"), ("b", "after")], "b", "edges[1]", "crosses the boundary"),
        (
            [*BASE[:3], loop("other"), probe("c", "other")],
            [("start", "loop"), ("b", "c")],
            "b",
            "edges[1]",
            "loop 'loop'",
        ),
        (
            [BASE[0], loop(concurrency=9), BASE[2]],
            [("start", "loop")],
            "loop",
            "config.concurrency",
            "DUCTWORK_MAX_LOOP_CONCURRENCY",
        ),
        (
            [BASE[0], loop(concurrency=0), BASE[2]],
            [("start", "loop")],
            "loop",
            "config.concurrency",
            "greater than or equal to 1",
        ),
        (
            [BASE[0], loop(max_items=101), BASE[2]],
            [("start", "loop")],
            "loop",
            "config.max_items",
            "DUCTWORK_MAX_LOOP_ITEMS",
        ),
        (
            [BASE[0], loop(on_item_error="skip"), BASE[2]],
            [("start", "loop")],
            "loop",
            "config.on_item_error",
            "'fail', 'continue' or 'collect'",
        ),
        ([BASE[0], loop()], [("start", "loop")], "loop", "parent", "has no body"),
        ([BASE[0], probe("b", "nowhere")], [], "b", "parent", "no node 'nowhere'"),
        ([BASE[0], probe("b", "start")], [], "b", "parent", "only a loop node has a body"),
        (
            [*BASE[:2], {"id": "w", "type": "wait", "config": {}, "parent": "loop"}],
            [("start", "loop")],
            "w",
            "parent",
            "cannot be in a loop body",
        ),
        (
            [*BASE, probe("reads", output="{{ outputs.b }}")],
            [("start", "loop"), ("loop", "reads")],
            "reads",
            "config.output",
            "in the body of loop 'loop'",
        ),
        (
            [*BASE[:2], probe("b", "loop", output="{{ outputs.loop }}")],
            [("start", "loop")],
            "b",
            "config.output",
            "cannot read the loop's output",
        ),
        (
            [*BASE[:2], probe("b", "loop", output="{{ outputs.after }}"), BASE[3]],
            [("start", "loop"), ("loop", "after")],
            "b",
            "config.output",
            "not upstream of 'loop'",
        ),
        (
            [*BASE[:3], probe("x[1]")],
            [("start", "loop")],
            "x[1]",
            "id",
            "cannot contain '['",
        ),
    ],
)
def test_save_time_issues(
    nodes: list[dict[str, Any]],
    edges: list[tuple[str, str]],
    node_id: str,
    field: str,
    fragment: str,
) -> None:
    issues = issues_of(nodes, edges)
    assert any(
        i.node_id == node_id and i.field == field and fragment in i.message for i in issues
    ), issues


def test_body_reads_outer_outputs_and_its_own_nodes() -> None:
    nodes = [
        {"id": "start", "type": "start"},
        loop(items="{{ outputs.start.rows }}"),
        probe("a", "loop", output="{{ outputs.start.x }}"),
        probe("b", "loop", output="{{ [outputs.a, item, index, loop.count] }}"),
        probe("after", output="{{ outputs.loop }}"),
    ]
    assert issues_of(nodes, [("start", "loop"), ("a", "b"), ("loop", "after")]) == []


# Over HTTP ------------------------------------------------------------------------------


def test_api_refuses_a_crossing_edge_and_runs_a_loop(client: httpx.Client) -> None:
    body: dict[str, Any] = {
        "name": "loop over http",
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "each", "type": "loop", "config": {"items": "{{ input.rows }}"}},
            {
                "id": "double",
                "type": "transformer",
                "parentId": "each",
                "config": {"transform_type": "compose", "mapping": {"v": "item * 2"}},
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "each"}, {"from": "each", "to": "end"}],
    }
    crossing = {**body, "edges": [*body["edges"], {"source": "double", "target": "end"}]}
    refused = client.post("/workflows/", json=crossing)
    assert refused.status_code == 422, refused.text
    assert any(
        issue["field"] == "edges[2]" and "crosses the boundary of loop 'each'" in issue["message"]
        for issue in refused.json()["detail"]
    ), refused.text
    saved = client.post("/workflows/", json=body)
    assert saved.status_code in (200, 201), saved.text
    ran = client.post(
        f"/workflows/{saved.json()['id']}/execute", json={"inputs": {"rows": [1, 2, 3]}}
    )
    assert ran.status_code == 200, ran.text
    assert ran.json()["status"] == "success", ran.text
    assert ran.json()["result"] == [{"v": 2}, {"v": 4}, {"v": 6}]
    view = client.get(f"/workflows/executions/{ran.json()['execution_id']}").json()
    assert view["node_states"]["double[2]"]["output"] == {"v": 6}
    assert view["node_states"]["each[0]"]["status"] == "completed"


def test_a_retry_resets_only_states_of_items_that_did_not_complete() -> None:
    parents = {"outer": None, "inner": "outer", "p": "inner", "b": "outer", "x": None}
    done = NodeState(status=NodeStatus.COMPLETED)
    states = {"outer[0]": done, "inner[1][0]": done}
    assert rerun_on_retry("x", parents, states)
    assert rerun_on_retry("outer[1]", parents, states)  # a top-level loop's item record
    assert not rerun_on_retry("b[0]", parents, states)  # outer item 0 completed
    assert rerun_on_retry("b[1]", parents, states)
    assert not rerun_on_retry("inner[0]", parents, states)
    assert not rerun_on_retry("inner[0][2]", parents, states)  # inner's record in outer[0]
    assert rerun_on_retry("inner[1][2]", parents, states)
    assert not rerun_on_retry("p[1][0]", parents, states)  # inner item [1][0] completed
    assert rerun_on_retry("p[1][1]", parents, states)
    assert not rerun_on_retry("gone[0]", parents, states)
