"""Issue-11 features inside loop bodies: usage and budgets per item, a merge that fires
early, and a sub-workflow called once per item (each item its own child run)."""

from __future__ import annotations

from pathlib import Path

from ductwork.models import NodeStatus, RunStatus, WorkflowSettings
from ductwork.store.base import RunQuery
from tests.support.engine import SpendNode, definition, embedded
from tests.test_loop import looped

RUN_WAIT = 30.0


async def test_usage_of_body_nodes_adds_up_per_item_and_a_budget_stops_an_item(
    tmp_path: Path,
) -> None:
    spend = SpendNode()
    body = [
        {
            "id": "llm",
            "type": "spend",
            "parent": "loop",
            "config": {"prompt_tokens": 10, "completion_tokens": 5, "cost": 0.01, "estimate": 0.01},
        }
    ]
    async with embedded(tmp_path, extra_nodes=[spend]) as app:
        run = await app.execute_definition(looped(body, concurrency=2), {"rows": [1, 2, 3, 4]})
        assert run.status is RunStatus.SUCCESS, run.error
        assert run.usage is not None
        assert run.usage["calls"] == 4 and run.usage["prompt_tokens"] == 40
        assert abs(run.cost - 0.04) < 1e-9
        assert run.node_states["llm[2]"].meta["usage"]["cost"] == 0.01

        # A budget of 0.025 lets two items' calls through and stops the third before its
        # call: with concurrency 1 the order is known.
        capped = looped(body, concurrency=1).model_copy(
            update={"settings": WorkflowSettings(max_cost_per_run=0.025)}
        )
        workflow = await app.create_workflow(capped)
        stopped, _ = await app.execute(
            workflow.id, {"rows": [1, 2, 3, 4]}, wait=True, wait_seconds=RUN_WAIT
        )
    assert stopped.status is RunStatus.ERROR
    assert "budget" in (stopped.error or "") and "item 2" in (stopped.error or "")
    calls = {node: n for (eid, node), n in spend.calls.items() if eid == stopped.execution_id}
    assert calls == {"llm[0]": 1, "llm[1]": 1}


async def test_a_merge_first_inside_a_body_fires_once_per_item(tmp_path: Path) -> None:
    body = [
        {
            "id": "a",
            "type": "transformer",
            "parent": "loop",
            "config": {"transform_type": "compose", "mapping": {"from": "'a'", "n": "item"}},
        },
        {
            "id": "b",
            "type": "transformer",
            "parent": "loop",
            "config": {"transform_type": "compose", "mapping": {"from": "'b'", "n": "item"}},
        },
        {"id": "both", "type": "merge", "parent": "loop", "config": {"mode": "wait_all"}},
    ]
    async with embedded(tmp_path) as app:
        run = await app.execute_definition(
            looped(body, [("a", "both"), ("b", "both")], concurrency=2), {"rows": [1, 2]}
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == [
        {"a": {"from": "a", "n": 1}, "b": {"from": "b", "n": 1}},
        {"a": {"from": "a", "n": 2}, "b": {"from": "b", "n": 2}},
    ]
    assert run.node_states["both[1]"].status is NodeStatus.COMPLETED


async def test_a_sub_workflow_in_a_body_starts_one_child_per_item(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        child = await app.create_workflow(
            definition(
                [
                    {
                        "id": "square",
                        "type": "transformer",
                        "config": {"transform_type": "compose", "mapping": {"sq": "n * n"}},
                    },
                    {"id": "end", "type": "end"},
                ],
                [("square", "end")],
            )
        )
        body = [
            {
                "id": "call",
                "type": "sub-workflow",
                "parent": "loop",
                "config": {"workflow_id": child.id, "inputs": {"n": "{{ item }}"}},
            },
        ]
        parent = await app.create_workflow(looped(body, concurrency=3))
        run, _ = await app.execute(parent.id, {"rows": [2, 3, 4]}, wait=True, wait_seconds=RUN_WAIT)
        children = await app.find_runs(RunQuery(parent_execution_id=run.execution_id))
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == [{"sq": 4}, {"sq": 9}, {"sq": 16}]
    assert sorted(c.parent_node_id or "" for c in children) == ["call[0]", "call[1]", "call[2]"]
    assert all(c.depth == 1 and c.status is RunStatus.SUCCESS for c in children)
