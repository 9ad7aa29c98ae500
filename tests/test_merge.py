"""The `merge` node on the embedded engine: every mode, skipped branches, `first` not waiting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ductwork.engine.graph import WorkflowInvalid
from ductwork.models import NodeState, NodeStatus, Run, RunStatus, utcnow
from ductwork.service import Ductwork
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually

RUN_WAIT = 30.0


def value(node_id: str, output: Any) -> dict[str, Any]:
    """A node that outputs `output` (a transformer evaluating its literal)."""
    return {
        "id": node_id,
        "type": "transformer",
        "config": {"transform_type": "compose", "mapping": {"v": repr(output)}},
    }


def merge(node_id: str = "merge", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "merge", "config": config}


async def merged(app: Ductwork, branches: dict[str, Any], **config: Any) -> Run:
    """Run start -> each branch -> merge -> end; branches output {"v": value}."""
    nodes = [{"id": "start", "type": "start"}, merge(**config), {"id": "end", "type": "end"}]
    edges: list[tuple[str, str] | dict[str, Any]] = [("merge", "end")]
    for node_id, output in branches.items():
        nodes.append(value(node_id, output))
        edges += [("start", node_id), (node_id, "merge")]
    return await app.execute_definition(definition(nodes, edges), {})


async def test_wait_all_keys_outputs_by_branch(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        run = await merged(app, {"a": 1, "b": [2]})
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == {"a": {"v": 1}, "b": {"v": [2]}}


async def test_wait_all_with_one_branch_is_still_keyed(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        run = await merged(app, {"only": "x"})
    assert run.result == {"only": {"v": "x"}}


async def test_append_concatenates_lists_in_edge_order(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        nodes: list[dict[str, Any]] = [
            {"id": "start", "type": "start"},
            {"id": "a", "type": "transformer", "config": {"expression": "[1, 2]"}},
            {"id": "b", "type": "transformer", "config": {"expression": "'three'"}},
            {"id": "c", "type": "transformer", "config": {"expression": "[4]"}},
            merge(mode="append"),
        ]
        # Edge order decides, not node order or completion order.
        edges: list[tuple[str, str] | dict[str, Any]] = [
            ("start", "a"),
            ("start", "b"),
            ("start", "c"),
            ("c", "merge"),
            ("a", "merge"),
            ("b", "merge"),
        ]
        run = await app.execute_definition(definition(nodes, edges), {})
    assert run.node_states["merge"].output == [4, 1, 2, "three"]


async def test_by_key_joins_objects_in_the_first_branch_order(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        nodes: list[dict[str, Any]] = [
            {"id": "start", "type": "start"},
            {
                "id": "people",
                "type": "transformer",
                "config": {"expression": "[{'id': 2, 'name': 'bo'}, {'id': 1, 'name': 'al'}]"},
            },
            {
                "id": "ages",
                "type": "transformer",
                "config": {"expression": "[{'id': 1, 'age': 30}, {'id': 3, 'age': 9}]"},
            },
            merge(mode="by_key", key="id"),
        ]
        edges: list[tuple[str, str] | dict[str, Any]] = [
            ("start", "people"),
            ("start", "ages"),
            ("people", "merge"),
            ("ages", "merge"),
        ]
        run = await app.execute_definition(definition(nodes, edges), {})
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["merge"].output == [
        {"id": 2, "name": "bo"},
        {"id": 1, "name": "al", "age": 30},
        {"id": 3, "age": 9},
    ]


async def test_by_key_refuses_an_output_that_is_not_a_list_of_objects(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        run = await merged(app, {"a": 1}, mode="by_key", key="id")
    assert run.status is RunStatus.ERROR
    assert (
        run.node_states["merge"].error == "by_key: the output of a is dict, not a list of objects"
    )


async def test_skipped_branches_are_left_out_of_every_mode(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        for mode, expected in (
            ("wait_all", {"yes": [1]}),
            ("append", [1]),
            ("first", [1]),
        ):
            nodes: list[dict[str, Any]] = [
                {"id": "start", "type": "start"},
                {"id": "check", "type": "condition", "config": {"condition": "true"}},
                {"id": "yes", "type": "transformer", "config": {"expression": "[1]"}},
                {"id": "no", "type": "transformer", "config": {"expression": "[2]"}},
                merge(mode=mode),
            ]
            edges: list[tuple[str, str] | dict[str, Any]] = [
                ("start", "check"),
                {"from": "check", "to": "yes", "branch": "true"},
                {"from": "check", "to": "no", "branch": "false"},
                ("yes", "merge"),
                ("no", "merge"),
            ]
            run = await app.execute_definition(definition(nodes, edges), {})
            assert run.status is RunStatus.SUCCESS, run.error
            assert run.node_states["no"].status is NodeStatus.SKIPPED
            assert run.node_states["merge"].output == expected, mode


async def test_a_merge_of_only_skipped_branches_is_skipped(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        nodes: list[dict[str, Any]] = [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "condition", "config": {"condition": "false"}},
            {"id": "a", "type": "transformer", "config": {}},
            {"id": "b", "type": "transformer", "config": {}},
            merge(mode="first"),
        ]
        edges: list[tuple[str, str] | dict[str, Any]] = [
            ("start", "check"),
            {"from": "check", "to": "a", "branch": "true"},
            {"from": "check", "to": "b", "branch": "true"},
            ("a", "merge"),
            ("b", "merge"),
        ]
        run = await app.execute_definition(definition(nodes, edges), {})
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["merge"].status is NodeStatus.SKIPPED


async def test_first_does_not_wait_for_slower_branches(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        nodes: list[dict[str, Any]] = [
            {"id": "start", "type": "start"},
            {"id": "slow", "type": "probe", "config": {"hold": True, "output": "slow"}},
            {"id": "fast", "type": "probe", "config": {"output": "fast"}},
            merge(mode="first"),
            {"id": "after", "type": "probe", "config": {}},
        ]
        edges: list[tuple[str, str] | dict[str, Any]] = [
            ("start", "slow"),
            ("start", "fast"),
            ("slow", "merge"),
            ("fast", "merge"),
            ("merge", "after"),
        ]
        wf = await app.create_workflow(definition(nodes, edges))
        run, _ = await app.execute(wf.id, {}, wait=False)
        execution_id = run.execution_id

        async def merged_while_slow_holds() -> bool:
            current = await app.get_run(execution_id, with_events=False)
            state = current.node_states.get("after")
            return state is not None and state.status is NodeStatus.COMPLETED

        await eventually(merged_while_slow_holds, what="the merge and its successor done")
        holding = await app.get_run(execution_id, with_events=False)
        assert holding.status is RunStatus.RUNNING  # the run still waits for `slow`
        assert holding.node_states["slow"].status is NodeStatus.RUNNING
        node.release()
        final = await app.wait_for(execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["merge"].output == "fast"
    assert final.node_states["slow"].status is NodeStatus.COMPLETED
    assert node.calls[(execution_id, "after")] == 1  # the merge ran once, so did its successor
    assert [e.node_id for e in final.events if e.type == "node_started"].count("merge") == 1


async def test_by_key_needs_a_key(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        with pytest.raises(WorkflowInvalid) as invalid:
            await app.create_workflow(definition([merge(mode="by_key")], []))
    (issue,) = invalid.value.issues
    assert issue.node_id == "merge"
    assert "by_key needs `key`" in issue.message


async def test_first_fires_from_stored_states_after_a_crash(tmp_path: Path) -> None:
    """A run taken over with one branch done and the other still to run: the merge does
    not wait for the re-run branch (the ready set is rebuilt with `fires_early`)."""
    node = ProbeNode()
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "slow", "type": "probe", "config": {"hold": True}},
        {"id": "fast", "type": "probe", "config": {"output": "fast"}},
        merge(mode="first"),
    ]
    edges: list[tuple[str, str] | dict[str, Any]] = [
        ("start", "slow"),
        ("start", "fast"),
        ("slow", "merge"),
        ("fast", "merge"),
    ]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        done = NodeState(status=NodeStatus.COMPLETED)
        stored = await app.store.create_run(
            Run(
                execution_id="taken-over",
                workflow_id="wf",
                workflow_version=1,
                status=RunStatus.RUNNING,
                definition=definition(nodes, edges),
                created_at=utcnow(),
                node_states={
                    "start": done,
                    "fast": done.model_copy(update={"output": "fast"}),
                    "slow": NodeState(status=NodeStatus.RUNNING, attempts=1),
                },
            )
        )
        await app.queue.enqueue(stored.execution_id)

        async def merge_done() -> bool:
            run = await app.get_run(stored.execution_id, with_events=False)
            state = run.node_states.get("merge")
            return state is not None and state.status is NodeStatus.COMPLETED

        await eventually(merge_done, what="the merge completed while slow holds")
        node.release()
        final = await app.wait_for(stored.execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["merge"].output == "fast"


async def test_first_takes_the_first_completed_branch_not_a_failed_one(tmp_path: Path) -> None:
    """A branch that failed with on_error continue (output null) settles first: `first`
    neither fires on it nor picks it (it comes first in edge order)."""
    node = ProbeNode()
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "bad", "type": "probe", "config": {"fail_times": 99}, "on_error": "continue"},
        {"id": "slow", "type": "probe", "config": {"hold": True, "output": "slow"}},
        merge(mode="first"),
    ]
    edges: list[tuple[str, str] | dict[str, Any]] = [
        ("start", "bad"),
        ("start", "slow"),
        ("bad", "merge"),
        ("slow", "merge"),
    ]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        wf = await app.create_workflow(definition(nodes, edges))
        run, _ = await app.execute(wf.id, {}, wait=False)

        async def bad_failed() -> bool:
            current = await app.get_run(run.execution_id, with_events=False)
            state = current.node_states.get("bad")
            return state is not None and state.status is NodeStatus.FAILED

        await eventually(bad_failed, what="the failing branch settled")
        node.release()
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["merge"].output == "slow"
    assert final.node_states["merge"].meta["branch"] == "slow"
