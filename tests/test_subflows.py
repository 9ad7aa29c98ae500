"""`sub-workflow` nodes and child runs on the embedded stack (SQLite, in-process queue)."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from ductwork.engine.graph import WorkflowInvalid
from ductwork.models import NodeState, NodeStatus, Run, RunStatus, utcnow
from ductwork.nodes.base import ParentLink
from ductwork.service import Ductwork
from ductwork.store.base import RunQuery
from ductwork.views import origin_text
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually

RUN_WAIT = 30.0


def call(node_id: str, workflow_id: str, **config: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {k: config.pop(k) for k in ("timeout_seconds", "retry") if k in config}
    return {
        "id": node_id,
        "type": "sub-workflow",
        "config": {"workflow_id": workflow_id, **config},
        **spec,
    }


def probe(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "probe", "config": config}


async def child_workflow(app: Ductwork, *nodes: dict[str, Any]) -> str:
    """A saved workflow: start -> nodes... -> end (a chain)."""
    chain = [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end"}]
    ids = [node["id"] for node in chain]
    wf = await app.create_workflow(definition(chain, list(itertools.pairwise(ids))))
    return wf.id


async def children(app: Ductwork, execution_id: str) -> list[Run]:
    return await app.store.find_runs(RunQuery(parent_execution_id=execution_id))


async def test_sync_call_returns_the_child_result_and_links_both_ways(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        child_id = await child_workflow(
            app,
            {
                "id": "sum",
                "type": "transformer",
                "config": {
                    "transform_type": "compose",
                    "mapping": {"total": "n * 2", "who": "who"},
                },
            },
        )
        parent = await app.create_workflow(
            definition(
                [
                    {"id": "start", "type": "start"},
                    call("call", child_id, inputs={"n": "{{ count }}", "who": "{{ name }}!"}),
                    {"id": "end", "type": "end"},
                ],
                [("start", "call"), ("call", "end")],
            )
        )
        run, _ = await app.execute(parent.id, {"count": 21, "name": "ann"}, wait=True)
        assert run.status is RunStatus.SUCCESS, run.error
        assert run.result == {"total": 42, "who": "ann!"}
        state = run.node_states["call"]
        (child,) = await children(app, run.execution_id)
        assert state.meta["child_execution_id"] == child.execution_id
    assert child.status is RunStatus.SUCCESS
    assert child.variables == {"n": 21, "who": "ann!"}  # a lone template keeps its type
    assert (child.parent_execution_id, child.parent_node_id, child.depth) == (
        run.execution_id,
        "call",
        1,
    )
    assert child.trigger == {
        "type": "sub-workflow",
        "execution_id": run.execution_id,
        "workflow_id": parent.id,
        "node_id": "call",
        "mode": "sync",
    }
    assert child.idempotency_key == f"sub:{run.execution_id}:call"


async def test_async_call_answers_at_once_and_the_child_runs_on(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        child_id = await child_workflow(app, probe("hold", hold=True, output="late"))
        parent = await app.create_workflow(definition([call("call", child_id, mode="async")], []))
        run, _ = await app.execute(parent.id, {}, wait=True)
        assert run.status is RunStatus.SUCCESS, run.error
        output = run.node_states["call"].output
        child_run = await app.get_run(output["execution_id"])
        assert output == {"execution_id": child_run.execution_id, "workflow_id": child_id}
        assert run.node_states["call"].meta["child_execution_id"] == child_run.execution_id
        assert not child_run.status.finished  # held: the parent did not wait for it
        node.release()
        child_run = await app.wait_for(output["execution_id"], RUN_WAIT)
    assert child_run.status is RunStatus.SUCCESS
    assert child_run.result == "late"


async def test_pinned_version_and_current_version(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        chain = [("start", "v"), ("v", "end")]

        def version(label: str) -> Any:
            return definition(
                [
                    {"id": "start", "type": "start"},
                    {"id": "v", "type": "transformer", "config": {"expression": f"'{label}'"}},
                    {"id": "end", "type": "end"},
                ],
                list(chain),
            )

        child = await app.create_workflow(version("one"))
        await app.update_workflow(child.id, version("two"))
        parent = await app.create_workflow(
            definition(
                [call("pinned", child.id, version=1), call("current", child.id)],
                [],
            )
        )
        run, _ = await app.execute(parent.id, {}, wait=True)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["pinned"].output == "one"
    assert run.node_states["current"].output == "two"


async def test_a_workflow_calling_itself_stops_at_the_depth_limit(tmp_path: Path) -> None:
    async with embedded(tmp_path, max_workflow_depth=2) as app:
        wf = await app.create_workflow(definition([{"id": "start", "type": "start"}], []))
        # Only a saved workflow has an id to call: it calls itself from version 2 on.
        await app.update_workflow(wf.id, definition([call("again", wf.id)], []))
        run, _ = await app.execute(wf.id, {}, wait=True)
        assert run.status is RunStatus.ERROR
        assert run.error is not None and "DUCTWORK_MAX_WORKFLOW_DEPTH (2)" in run.error
        (first,) = await children(app, run.execution_id)
        (second,) = await children(app, first.execution_id)
        assert await children(app, second.execution_id) == []
    assert (first.depth, second.depth) == (1, 2)
    assert second.error == "node again failed: sub-workflow depth 3 is past " + (
        "DUCTWORK_MAX_WORKFLOW_DEPTH (2): is a workflow calling itself?"
    )


async def test_a_failing_child_fails_the_node_with_its_error(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        child_id = await child_workflow(app, probe("boom", fatal=True))
        parent = await app.create_workflow(definition([call("call", child_id)], []))
        run, _ = await app.execute(parent.id, {}, wait=True)
        (child,) = await children(app, run.execution_id)
    assert run.status is RunStatus.ERROR
    assert run.node_states["call"].error == (
        f"sub-workflow run {child.execution_id} failed: node boom failed: fatal failure"
    )


async def test_retrying_the_parent_retries_the_failed_child(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        # Fails once (no retry policy: the child fails), succeeds when tried again.
        child_id = await child_workflow(app, probe("flaky", fail_times=1, output="ok"))
        parent = await app.create_workflow(definition([call("call", child_id)], []))
        run, _ = await app.execute(parent.id, {}, wait=True)
        assert run.status is RunStatus.ERROR
        await app.retry(run.execution_id)
        again = await app.wait_for(run.execution_id, RUN_WAIT)
        (child,) = await children(app, run.execution_id)
    assert again.status is RunStatus.SUCCESS, again.error
    assert again.node_states["call"].output == "ok"
    assert child.status is RunStatus.SUCCESS  # the same child, run on from its failed node


async def test_cancelling_the_parent_cancels_the_child(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        grandchild_id = await child_workflow(app, probe("hold", hold=True))
        child_id = await child_workflow(app, call("deeper", grandchild_id))
        parent = await app.create_workflow(definition([call("call", child_id)], []))
        run, _ = await app.execute(parent.id, {}, wait=False)

        await eventually(
            lambda: any(ids == {"hold"} for ids in node.running.values()),
            what="the grandchild's probe running",
        )
        await app.cancel(run.execution_id)
        final = await app.wait_for(run.execution_id, RUN_WAIT)
        (child,) = await children(app, run.execution_id)
        (grandchild,) = await children(app, child.execution_id)
        child = await app.wait_for(child.execution_id, RUN_WAIT)
        grandchild = await app.wait_for(grandchild.execution_id, RUN_WAIT)
        node.release()
    assert final.status is RunStatus.CANCELLED
    assert child.status is RunStatus.CANCELLED
    assert grandchild.status is RunStatus.CANCELLED
    assert (grandchild.execution_id, "hold") in node.cancelled


async def test_a_timed_out_node_cancels_its_child(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        child_id = await child_workflow(app, probe("hold", hold=True))
        parent = await app.create_workflow(
            definition([call("call", child_id, timeout_seconds=0.2)], [])
        )
        run, _ = await app.execute(parent.id, {}, wait=True)
        (child,) = await children(app, run.execution_id)
        child = await app.wait_for(child.execution_id, RUN_WAIT)
        node.release()
    assert run.status is RunStatus.ERROR
    assert run.node_states["call"].error == "timed out after 0.2 s"
    assert child.status is RunStatus.CANCELLED
    assert (child.execution_id, "hold") in node.cancelled


async def test_a_node_run_again_after_a_crash_finds_the_same_child(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        child_id = await child_workflow(
            app, {"id": "v", "type": "transformer", "config": {"expression": "x + 1"}}
        )
        parent = await app.create_workflow(
            definition([call("call", child_id, inputs={"x": 1})], [])
        )
        # The parent's worker died after starting the child: the node is stored running.
        now = utcnow()
        stored = await app.store.create_run(
            Run(
                execution_id="crashed-parent",
                workflow_id=parent.id,
                workflow_version=1,
                status=RunStatus.RUNNING,
                definition=parent.definition,
                created_at=now,
                start_time=now,
                node_states={"call": NodeState(status=NodeStatus.RUNNING, attempts=1)},
            )
        )
        link = ParentLink(stored.execution_id, parent.id, "call", 0)
        first = await app.child_runs.start_child(
            parent=link, workflow_id=child_id, version=None, inputs={"x": 1}
        )
        again = await app.child_runs.start_child(
            parent=link, workflow_id=child_id, version=None, inputs={"x": 1}
        )
        assert again.execution_id == first.execution_id
        await app.queue.enqueue(stored.execution_id)
        final = await app.wait_for(stored.execution_id, RUN_WAIT)
        found = await children(app, stored.execution_id)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["call"].attempts == 2
    assert final.node_states["call"].meta["child_execution_id"] == first.execution_id
    assert final.node_states["call"].output == 2
    assert [run.execution_id for run in found] == [first.execution_id]


async def test_saving_checks_the_called_workflow_and_version(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        child_id = await child_workflow(app)
        with pytest.raises(WorkflowInvalid) as unknown:
            await app.create_workflow(definition([call("call", "feedfacefeedfacefeedface")], []))
        with pytest.raises(WorkflowInvalid) as version:
            await app.create_workflow(definition([call("call", child_id, version=3)], []))
        # A template is known only when the node runs: not checked on save.
        await app.create_workflow(definition([call("call", "{{ target }}")], []))
    (issue,) = unknown.value.issues
    assert (issue.node_id, issue.field) == ("call", "config.workflow_id")
    assert issue.message == "no workflow with the id 'feedfacefeedfacefeedface'"
    (issue,) = version.value.issues
    assert (issue.node_id, issue.field) == ("call", "config.version")
    assert issue.message == f"workflow {child_id!r} has no version 3"


async def test_a_deleted_workflow_fails_the_node_when_it_runs(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        child_id = await child_workflow(app)
        parent = await app.create_workflow(definition([call("call", child_id)], []))
        await app.delete_workflow(child_id)
        run, _ = await app.execute(parent.id, {}, wait=True)
    assert run.status is RunStatus.ERROR
    assert (
        run.node_states["call"].error == f"config.workflow_id: no workflow with the id {child_id!r}"
    )


async def test_a_sync_call_does_not_deadlock_a_worker_with_one_slot(tmp_path: Path) -> None:
    """The parent holds the only queue slot: its node drives the child itself."""
    async with embedded(tmp_path, max_concurrent_runs=1) as app:
        grandchild_id = await child_workflow(
            app, {"id": "v", "type": "transformer", "config": {"expression": "'deep'"}}
        )
        child_id = await child_workflow(app, call("inner", grandchild_id))
        parent = await app.create_workflow(definition([call("outer", child_id)], []))
        run, _ = await app.execute(parent.id, {}, wait=True, wait_seconds=RUN_WAIT)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["outer"].output == "deep"


async def test_the_node_retry_policy_runs_a_failed_child_on(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        child_id = await child_workflow(app, probe("flaky", fail_times=1, output="ok"))
        parent = await app.create_workflow(
            definition(
                [call("call", child_id, retry={"max_attempts": 2, "backoff_seconds": 0})], []
            )
        )
        run, _ = await app.execute(parent.id, {}, wait=True)
        (child,) = await children(app, run.execution_id)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["call"].attempts == 2
    assert run.node_states["call"].output == "ok"
    assert child.status is RunStatus.SUCCESS
    assert node.calls[(child.execution_id, "flaky")] == 2


async def test_a_node_retried_after_a_timeout_runs_its_cancelled_child_on(
    tmp_path: Path,
) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        child_id = await child_workflow(app, probe("hold", hold=True, output="held"))
        parent = await app.create_workflow(
            definition(
                [
                    call(
                        "call",
                        child_id,
                        timeout_seconds=1,
                        # Spare attempts: a loaded machine may need more than 1 s.
                        retry={"max_attempts": 4, "backoff_seconds": 0},
                    )
                ],
                [],
            )
        )
        run, _ = await app.execute(parent.id, {}, wait=False)
        # The first attempt times out and cancels the child; the second finds it
        # cancelled, runs it on, and the released probe lets it finish in time.
        await eventually(
            lambda: any(key[1] == "hold" and key[0] != run.execution_id for key in node.cancelled),
            what="the first attempt's child probe cancelled",
        )
        node.release()
        final = await app.wait_for(run.execution_id, RUN_WAIT)
        (child,) = await children(app, run.execution_id)
    assert final.status is RunStatus.SUCCESS, final.error
    assert final.node_states["call"].output == "held"
    assert child.status is RunStatus.SUCCESS


async def test_a_child_that_failed_before_the_wait_looked_is_not_run_again(
    tmp_path: Path,
) -> None:
    """Only a child found again (a re-run, a retry) is retried: one that a worker failed
    between its start and the node's first look is this attempt's failure."""
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        child_id = await child_workflow(app, probe("flaky", fail_times=1, output="ok"))
        parent = await app.create_workflow(definition([call("call", child_id)], []))
        waiting = app.child_runs.wait_child

        async def look_late(execution_id: str) -> Run:
            await app.wait_for(execution_id, RUN_WAIT)  # the queue's worker fails it first
            return await waiting(execution_id)

        app.child_runs.wait_child = look_late  # type: ignore[method-assign]
        run, _ = await app.execute(parent.id, {}, wait=True)
        (child,) = await children(app, run.execution_id)
    assert run.status is RunStatus.ERROR
    assert child.status is RunStatus.ERROR
    assert node.calls[(child.execution_id, "flaky")] == 1


def test_a_child_run_origin_names_the_parent_node_and_run() -> None:
    trigger = {
        "type": "sub-workflow",
        "execution_id": "3f2a1c0e-aaaa-bbbb-cccc-000000000000",
        "workflow_id": "wf",
        "node_id": "call[3]",
    }
    assert origin_text(trigger) == "sub-workflow call[3] of 3f2a1c0e…"
    assert origin_text(trigger, short=False) == (
        "sub-workflow call[3] of 3f2a1c0e-aaaa-bbbb-cccc-000000000000"
    )


SECRET = "sk-topsecret-123"


async def test_saving_refuses_secrets_in_the_child_inputs(tmp_path: Path) -> None:
    async with embedded(tmp_path, secrets={"API_KEY": SECRET}) as app:
        child_id = await child_workflow(app)
        with pytest.raises(WorkflowInvalid) as invalid:
            await app.create_workflow(
                definition([call("call", child_id, inputs={"k": "{{ secrets.API_KEY }}"})], [])
            )
    (issue,) = invalid.value.issues
    assert (issue.node_id, issue.field) == ("call", "config.inputs.k")
    assert issue.message.startswith("must not read secrets")


async def test_child_inputs_are_masked_with_the_parent_secrets(tmp_path: Path) -> None:
    """A secret value that reaches an input another way than `secrets.` (here the run's
    own input) is masked as the parent's outputs are: the child's redactor does not know
    the parent's secrets. (A definition saved before the check fails when it runs: the
    plan is checked again.)"""
    async with embedded(tmp_path, secrets={"API_KEY": SECRET}) as app:
        child_id = await child_workflow(app)
        parent = await app.create_workflow(
            definition(
                [
                    call("call", child_id, inputs={"k": "{{ n }}"}),
                    # Another node reads the secret, so the run loads (and masks) it.
                    {"id": "end", "type": "end", "config": {"output": "{{ secrets.API_KEY }}"}},
                ],
                [("call", "end")],
            )
        )
        run, _ = await app.execute(parent.id, {"n": f"key {SECRET}"}, wait=True)
        assert run.status is RunStatus.SUCCESS, run.error
        (child,) = await children(app, run.execution_id)
        child = await app.wait_for(child.execution_id, RUN_WAIT)
    assert child.variables == {"k": "key ***"}
    assert SECRET not in child.model_dump_json()
