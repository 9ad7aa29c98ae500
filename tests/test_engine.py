"""The executor end to end on the embedded stack (SQLite, in-process queue and bus)."""

from __future__ import annotations

import asyncio
import time
import tracemalloc
from pathlib import Path
from typing import Any

from ductwork.models import (
    Checkpoint,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    WorkflowDefinition,
    utcnow,
)
from ductwork.service import Ductwork
from tests.support.engine import ProbeNode, definition, embedded
from tests.support.polling import eventually

RUN_WAIT = 30.0
"""Seconds a test waits for a run to end: a deadline for a stuck run, not a speed check."""


def t(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "transformer", "config": config}


def probe(node_id: str, **spec: Any) -> dict[str, Any]:
    config = spec.pop("config", {})
    return {"id": node_id, "type": "probe", "config": config, **spec}


async def stored_run(
    app: Ductwork, execution_id: str, definition_: WorkflowDefinition, **fields: Any
) -> Run:
    """Put a run straight into the store (no queue), as a crashed or duplicated run would be."""
    now = utcnow()
    return await app.store.create_run(
        Run(
            execution_id=execution_id,
            workflow_id="wf",
            workflow_version=1,
            definition=definition_,
            created_at=now,
            **fields,
        )
    )


async def test_chain_passes_outputs_and_collects_result(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        run = await app.execute_definition(
            definition(
                [
                    {"id": "start", "type": "start"},
                    t("double", expression="value * 2", source="input.values"),
                    t(
                        "wrap",
                        transform_type="compose",
                        mapping={"doubled": "input", "who": "user"},
                    ),
                    {"id": "end", "type": "end"},
                ],
                [("start", "double"), ("double", "wrap"), ("wrap", "end")],
            ),
            {"values": [1, 2, 3], "user": "ann"},
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == {"doubled": [2, 4, 6], "who": "ann"}
    assert [s.status for s in run.node_states.values()] == [NodeStatus.COMPLETED] * 4
    types = [e.type for e in run.events]
    assert types[0] == "run_started" and types[-1] == "run_finished"
    assert [e.seq for e in run.events] == list(range(1, len(run.events) + 1))


async def test_condition_branches_and_skip_propagation(tmp_path: Path) -> None:
    nodes = [
        {"id": "start", "type": "start"},
        {"id": "check", "type": "condition", "config": {"condition": "status == 'active'"}},
        t("yes", transform_type="compose", mapping={"path": "'yes'"}),
        t("no", transform_type="compose", mapping={"path": "'no'"}),
        t("after_no"),
        {"id": "end", "type": "end"},
    ]
    edges: list[Any] = [
        ("start", "check"),
        {"from": "check", "to": "yes", "branch": "true"},
        {"from": "check", "to": "no", "branch": "false"},
        ("no", "after_no"),
        ("yes", "end"),
        ("after_no", "end"),
    ]
    async with embedded(tmp_path) as app:
        active = await app.execute_definition(definition(nodes, edges), {"status": "active"})
        idle = await app.execute_definition(definition(nodes, edges), {"status": "idle"})
    states = {k: v.status for k, v in active.node_states.items()}
    assert states["yes"] is NodeStatus.COMPLETED
    assert states["no"] is NodeStatus.SKIPPED and states["after_no"] is NodeStatus.SKIPPED
    assert states["end"] is NodeStatus.COMPLETED
    assert active.result == {"path": "yes"}
    assert active.node_states["check"].branch == "true"
    assert idle.result == {"path": "no"}
    assert idle.node_states["yes"].status is NodeStatus.SKIPPED


async def test_independent_branches_overlap(tmp_path: Path) -> None:
    # Each branch waits until all five are running: an engine that ran them one after
    # another would fail the first one ("at most 1 of 5 probes ran at once").
    nodes = (
        [{"id": "start", "type": "start"}]
        + [probe(f"slow{i}", config={"together": 5}) for i in range(5)]
        + [{"id": "end", "type": "end"}]
    )
    edges = [("start", f"slow{i}") for i in range(5)] + [(f"slow{i}", "end") for i in range(5)]
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(definition(nodes, edges), {"x": 1})
    assert run.status is RunStatus.SUCCESS, run.error
    assert node.peak_running[run.execution_id] == 5
    assert set(run.result) == {f"slow{i}" for i in range(5)}


async def test_parallelism_is_bounded(tmp_path: Path) -> None:
    nodes = [probe(f"p{i}", config={"together": 2, "sleep": 0.2}) for i in range(4)]
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node], max_parallel_nodes=2) as app:
        started = time.perf_counter()
        run = await app.execute_definition(definition(nodes, []), {})
        took = time.perf_counter() - started
    assert run.status is RunStatus.SUCCESS, run.error
    assert node.peak_running[run.execution_id] == 2, "2 slots: two at once, never more"
    assert took >= 0.38, "4 x 0.2 s nodes with 2 slots cannot finish in under 0.4 s"


async def test_retries_with_backoff_then_success(tmp_path: Path) -> None:
    node = ProbeNode()
    nodes = [
        probe(
            "flaky",
            config={"fail_times": 2, "output": "ok"},
            # No jitter: the delays below are exact (tests/test_retry_policy.py covers jitter).
            retry={"max_attempts": 3, "backoff_seconds": 0.05, "backoff_factor": 2, "jitter": 0},
        )
    ]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        started = time.perf_counter()
        run = await app.execute_definition(definition(nodes, []), {})
        took = time.perf_counter() - started
    state = run.node_states["flaky"]
    assert run.status is RunStatus.SUCCESS
    assert state.attempts == 3 and state.output == "ok"
    assert took >= 0.05 + 0.1
    retrying = [e for e in run.events if e.type == "node_retrying"]
    assert [e.data["attempt"] for e in retrying] == [1, 2]
    assert [e.data["delay_seconds"] for e in retrying] == [0.05, 0.1]


async def test_retries_exhausted_fail_the_run(tmp_path: Path) -> None:
    nodes = [
        probe("flaky", config={"fail_times": 5}, retry={"max_attempts": 2, "backoff_seconds": 0})
    ]
    async with embedded(tmp_path, extra_nodes=[ProbeNode()]) as app:
        run = await app.execute_definition(definition(nodes, []), {})
    assert run.status is RunStatus.ERROR
    assert run.node_states["flaky"].attempts == 2
    assert run.error == "node flaky failed: transient failure 2"


async def test_non_retryable_error_is_not_retried(tmp_path: Path) -> None:
    node = ProbeNode()
    nodes = [probe("bad", config={"fatal": True}, retry={"max_attempts": 5, "backoff_seconds": 0})]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(definition(nodes, []), {})
    assert run.node_states["bad"].attempts == 1
    assert run.status is RunStatus.ERROR


async def test_timeout(tmp_path: Path) -> None:
    node = ProbeNode()
    nodes = [probe("slow", config={"hold": True}, timeout_seconds=0.1)]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(definition(nodes, []), {})
    assert run.status is RunStatus.ERROR
    assert run.node_states["slow"].error == "timed out after 0.1 s"
    assert node.cancelled == {(run.execution_id, "slow")}, "the timeout must cut the node off"


async def test_on_error_continue_and_branch(tmp_path: Path) -> None:
    nodes = [
        probe("cont", config={"fatal": True}, on_error="continue"),
        t("after_cont"),
        probe("br", config={"fatal": True}, on_error="branch"),
        t("on_ok"),
        t("on_err", transform_type="compose", mapping={"handled": "outputs.br is none"}),
    ]
    edges: list[Any] = [
        ("cont", "after_cont"),
        ("br", "on_ok"),
        {"from": "br", "to": "on_err", "branch": "error"},
    ]
    async with embedded(tmp_path, extra_nodes=[ProbeNode()]) as app:
        run = await app.execute_definition(definition(nodes, edges), {})
    states = {k: v.status for k, v in run.node_states.items()}
    assert run.status is RunStatus.SUCCESS
    assert states == {
        "cont": NodeStatus.FAILED,
        "after_cont": NodeStatus.COMPLETED,
        "br": NodeStatus.FAILED,
        "on_ok": NodeStatus.SKIPPED,
        "on_err": NodeStatus.COMPLETED,
    }
    assert run.node_states["on_err"].output == {"handled": True}


async def test_failure_cancels_siblings(tmp_path: Path) -> None:
    nodes = [
        probe("bad", config={"fatal": True, "together": 2}),
        probe("slow", config={"hold": True}),
    ]
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        run = await app.execute_definition(definition(nodes, []), {})
    assert run.status is RunStatus.ERROR
    assert run.node_states["slow"].status is NodeStatus.CANCELLED
    assert node.cancelled == {(run.execution_id, "slow")}, "the sibling must be cut off"


async def test_cancel_a_running_run(tmp_path: Path) -> None:
    nodes = [probe("slow", config={"sleep": 30}), t("after")]
    async with embedded(tmp_path, extra_nodes=[ProbeNode()]) as app:
        wf = await app.create_workflow(definition(nodes, [("slow", "after")]))
        run, _ = await app.execute(wf.id, {}, wait=False)

        async def running() -> bool:
            current = await app.get_run(run.execution_id)
            return current.node_states.get("slow", NodeState()).status is NodeStatus.RUNNING

        await eventually(running)
        await app.cancel(run.execution_id)
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert final.status is RunStatus.CANCELLED
    assert final.node_states["slow"].status is NodeStatus.CANCELLED
    assert (
        "after" not in final.node_states or final.node_states["after"].status is NodeStatus.PENDING
    )


async def test_undefined_variable_names_node_and_variable(tmp_path: Path) -> None:
    nodes = [{"id": "greet", "type": "end", "config": {"output": "Hello {{ user_name }}"}}]
    async with embedded(tmp_path) as app:
        run = await app.execute_definition(definition(nodes, []), {})
    assert run.status is RunStatus.ERROR
    assert (
        run.error
        == "node greet failed: config.output: undefined variable: 'user_name' is undefined"
    )


async def test_sandbox_bomb_in_config_fails_the_node(tmp_path: Path) -> None:
    nodes = [{"id": "bomb", "type": "end", "config": {"output": "{{ 'a' * 10**9 }}"}}]
    async with embedded(tmp_path) as app:
        tracemalloc.start()
        try:
            run = await app.execute_definition(definition(nodes, []), {})
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert run.status is RunStatus.ERROR
    assert "refused by the sandbox" in (run.node_states["bomb"].error or "")
    # Refused before it was built: the gigabyte string never existed.
    assert peak < 100 * 2**20, f"{peak / 2**20:.0f} MiB allocated while refusing the bomb"


async def test_completed_nodes_are_not_rerun_after_a_crash(tmp_path: Path) -> None:
    """A run whose worker died mid-node: completed nodes keep outputs, the cut node runs again."""
    node = ProbeNode()
    nodes = [probe("a", config={"output": "A"}), probe("b"), probe("c")]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        now = utcnow()
        run = await stored_run(
            app,
            "crashed-run",
            definition(nodes, [("a", "b"), ("b", "c")]),
            status=RunStatus.RUNNING,
            start_time=now,
        )
        await app.store.checkpoint(
            run.execution_id,
            Checkpoint(
                node_states={
                    "a": NodeState(status=NodeStatus.COMPLETED, output="A", attempts=1),
                    "b": NodeState(status=NodeStatus.RUNNING, attempts=1, started_at=now),
                }
            ),
        )
        await app.executor.advance(run.execution_id)
        final = await app.get_run(run.execution_id)
    assert final.status is RunStatus.SUCCESS
    assert ("crashed-run", "a") not in node.calls
    assert node.calls[("crashed-run", "b")] == 1
    assert final.node_states["b"].attempts == 2
    assert final.node_states["b"].output == "A"
    assert final.node_states["c"].output == "A"


async def test_long_delay_parks_and_sweep_resumes(tmp_path: Path) -> None:
    # Parked for a second: time enough to see it waiting even on a loaded machine.
    nodes = [{"id": "wait", "type": "delay", "config": {"delay_seconds": 1.0}}, t("after")]
    async with embedded(
        tmp_path, durable_delay_threshold_seconds=0.1, sweep_interval_seconds=0.05
    ) as app:
        wf = await app.create_workflow(definition(nodes, [("wait", "after")]))
        run, _ = await app.execute(wf.id, {"k": 1}, wait=False)

        async def status_is(status: RunStatus) -> bool:
            return (await app.get_run(run.execution_id)).status is status

        await eventually(lambda: status_is(RunStatus.WAITING))
        parked = await app.get_run(run.execution_id)
        assert parked.node_states["wait"].status is NodeStatus.WAITING
        assert parked.wake_at is not None
        assert not app.executor.active_runs  # no worker is held while parked
        await eventually(lambda: status_is(RunStatus.SUCCESS), within=RUN_WAIT)
        final = await app.get_run(run.execution_id)
    assert final.node_states["after"].output == {"k": 1}
    assert final.end_time is not None and final.end_time >= parked.wake_at


async def test_sync_execute_waits_and_async_returns_queued(tmp_path: Path) -> None:
    nodes = [probe("p", config={"sleep": 0.1, "output": 1})]
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        wf = await app.create_workflow(definition(nodes, []))
        done, created = await app.execute(wf.id, {}, wait=True)
        queued, _ = await app.execute(wf.id, {}, wait=False)
        assert created and done.status is RunStatus.SUCCESS
        assert queued.status is RunStatus.QUEUED
        partial, _ = await app.execute(
            (await app.create_workflow(definition([probe("q", config={"hold": True})], []))).id,
            {},
            wait=True,
            wait_seconds=0.1,
        )
        assert partial.status in (RunStatus.QUEUED, RunStatus.RUNNING)
        node.release()


async def test_idempotency_key_returns_existing_run(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(definition([t("x")], []))
        first, created1 = await app.execute(wf.id, {}, wait=True, idempotency_key="k1")
        second, created2 = await app.execute(wf.id, {}, wait=True, idempotency_key="k1")
    assert created1 and not created2
    assert first.execution_id == second.execution_id


async def test_editing_a_workflow_does_not_change_a_run_in_flight(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        wf = await app.create_workflow(
            definition([probe("p", config={"hold": True, "output": "v1"})], [])
        )
        run, _ = await app.execute(wf.id, {}, wait=False)
        updated = await app.update_workflow(
            wf.id, definition([probe("p", config={"output": "v2"})], [])
        )
        node.release()
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert updated.version == 2
    assert final.workflow_version == 1
    assert final.node_states["p"].output == "v1"


async def test_retry_resumes_from_failed_node(tmp_path: Path) -> None:
    node = ProbeNode()
    nodes = [probe("a", config={"output": "A"}), probe("b", config={"fail_times": 1})]
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        wf = await app.create_workflow(definition(nodes, [("a", "b")]))
        failed, _ = await app.execute(wf.id, {}, wait=True)
        assert failed.status is RunStatus.ERROR
        await app.retry(failed.execution_id)
        final = await app.wait_for(failed.execution_id, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS
    assert node.calls[(failed.execution_id, "a")] == 1
    assert node.calls[(failed.execution_id, "b")] == 2
    assert final.node_states["b"].output == "A"


async def test_concurrent_runs(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        wf = await app.create_workflow(definition([t("a"), t("b")], [("a", "b")]))
        results = await asyncio.gather(
            *(app.execute(wf.id, {"i": i}, wait=True) for i in range(30))
        )
    assert all(run.status is RunStatus.SUCCESS for run, _ in results)
    assert sorted(
        run.result is None and run.node_states["b"].output["i"] for run, _ in results
    ) == list(range(30))


async def test_group_commit_batches_runs_and_isolates_a_failing_one(tmp_path: Path) -> None:
    from ductwork.engine.executor import GroupCommitter
    from ductwork.models import Event

    async with embedded(tmp_path) as app:
        store = app.store
        calls: list[int] = []
        original = store.checkpoint_many

        async def counting(items: Any, *, owner: str | None = None) -> None:
            calls.append(len(items))
            await original(items, owner=owner)

        store.checkpoint_many = counting  # type: ignore[method-assign]
        now = utcnow()
        ids = []
        for i in range(5):
            run = await stored_run(app, f"gc-{i}", definition([t("x")], []))
            ids.append(run.execution_id)
        committer = GroupCommitter(store)

        def cp(seq: int) -> Checkpoint:
            return Checkpoint(events=[Event(seq=seq, type="log", timestamp=now, data={})])

        await asyncio.gather(*(committer.commit(i, cp(1)) for i in ids))
        assert calls == [5], "five runs flushing in one tick share one commit"
        # A batch with one bad checkpoint (a seq already taken) fails only that run.
        results = await asyncio.gather(
            *(committer.commit(i, cp(1 if i == "gc-2" else 2)) for i in ids),
            return_exceptions=True,
        )
        failed = [i for i, r in zip(ids, results, strict=True) if isinstance(r, Exception)]
        assert failed == ["gc-2"]
        for execution_id in ids:
            run = await app.get_run(execution_id)
            assert run.last_seq == (1 if execution_id == "gc-2" else 2)


async def test_a_cancel_that_arrives_while_a_run_parks_is_not_lost(tmp_path: Path) -> None:
    """The run is stored as waiting but its worker still holds it: the cancel finds no
    driver to stop, and its wake-up finds the run still claimed. Someone must finish it."""
    nodes = [{"id": "wait", "type": "delay", "config": {"delay_seconds": 600}}, t("after")]
    async with embedded(tmp_path, durable_delay_threshold_seconds=0.1) as app:
        advance, release_lease = app.executor.advance, app.store.release_lease
        outcomes: list[RunStatus | None] = []

        async def recorded_advance(execution_id: str) -> RunStatus | None:
            outcome = await advance(execution_id)
            outcomes.append(outcome)
            return outcome

        cancelled: list[str] = []

        async def cancel_then_release(execution_id: str, owner: str) -> None:
            if not cancelled:
                # Parked, lease not yet given up: the cancel comes, and so does the
                # delivery that should finish the run, which finds it still claimed.
                cancelled.append(execution_id)
                await app.cancel(execution_id)
                await eventually(lambda: outcomes == [None], what="the cancel's delivery")
            await release_lease(execution_id, owner)

        app.executor.advance = recorded_advance  # type: ignore[method-assign]
        app.store.release_lease = cancel_then_release  # type: ignore[method-assign]
        wf = await app.create_workflow(definition(nodes, [("wait", "after")]))
        run, _ = await app.execute(wf.id, {}, wait=False)
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert cancelled == [run.execution_id]
    assert final.status is RunStatus.CANCELLED, final.status
    assert final.node_states["wait"].status is NodeStatus.CANCELLED


async def test_cancelling_a_parked_run_cancels_its_waiting_node(tmp_path: Path) -> None:
    nodes = [{"id": "wait", "type": "delay", "config": {"delay_seconds": 60}}, t("after")]
    async with embedded(tmp_path, durable_delay_threshold_seconds=0.1) as app:
        wf = await app.create_workflow(definition(nodes, [("wait", "after")]))
        run, _ = await app.execute(wf.id, {}, wait=False)

        async def parked() -> bool:
            return (await app.get_run(run.execution_id)).status is RunStatus.WAITING

        await eventually(parked)
        await app.cancel(run.execution_id)
        final = await app.wait_for(run.execution_id, RUN_WAIT)
    assert final.status is RunStatus.CANCELLED
    assert final.node_states["wait"].status is NodeStatus.CANCELLED


async def test_a_run_delivered_twice_to_one_process_runs_once(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(tmp_path, extra_nodes=[node]) as app:
        await stored_run(app, "twice", definition([probe("p", config={"sleep": 0.2})], []))
        first, second = await asyncio.gather(
            app.executor.advance("twice"), app.executor.advance("twice")
        )
    assert {first, second} == {RunStatus.SUCCESS, None}
    assert node.calls[("twice", "p")] == 1


async def test_a_worker_that_cannot_renew_its_lease_stops_writing(tmp_path: Path) -> None:
    node = ProbeNode()
    async with embedded(
        tmp_path, extra_nodes=[node], lease_seconds=0.6, heartbeat_seconds=0.1
    ) as app:
        store = app.store

        async def unreachable(*_: Any) -> bool:
            raise ConnectionError("store unreachable")

        store.renew_lease = unreachable  # type: ignore[method-assign]
        await stored_run(app, "lapsed", definition([probe("slow", config={"hold": True})], []))
        started = time.perf_counter()
        async with asyncio.timeout(RUN_WAIT):  # a worker that never gives up fails, not hangs
            outcome = await app.executor.advance("lapsed")
        took = time.perf_counter() - started
        after = await app.get_run("lapsed")
    assert outcome is None, "a worker whose lease lapsed must give the run up"
    assert took > 0.5, "it keeps the run while its lease (0.6 s) lasts"
    assert node.cancelled == {("lapsed", "slow")}, "it stops the node rather than finish it"
    assert after.status is RunStatus.RUNNING  # left for whoever holds the lease now
    assert not any(e.type == "run_finished" for e in after.events)


async def test_a_worker_whose_lease_was_taken_over_writes_nothing_more(tmp_path: Path) -> None:
    """Fencing: the store refuses the old holder's writes once another worker holds the run."""
    from datetime import timedelta

    node = ProbeNode()
    # Heartbeats far apart: the old holder learns of the takeover only when it writes.
    async with embedded(
        tmp_path, extra_nodes=[node], lease_seconds=120, heartbeat_seconds=60
    ) as app:
        await stored_run(
            app,
            "taken",
            definition([probe("slow", config={"hold": True}), t("after")], [("slow", "after")]),
        )
        advancing = asyncio.create_task(app.executor.advance("taken"))

        async def running() -> bool:
            run = await app.get_run("taken")
            return run.node_states.get("slow", NodeState()).status is NodeStatus.RUNNING

        await eventually(running)
        # Another worker takes the run over (as if this one had stalled past its lease).
        later = utcnow() + timedelta(seconds=600)  # past the old holder's 120 s lease
        assert await app.store.acquire_lease("taken", "other-worker", later, later)
        node.release()  # the node completes only now, after the takeover
        outcome = await advancing
        after = await app.get_run("taken")
    assert outcome is None
    assert node.finished == {("taken", "slow")}
    assert after.node_states["slow"].status is NodeStatus.RUNNING, "old holder must not complete it"
    assert "after" not in after.node_states
    assert after.lease_owner == "other-worker"


async def test_seed_filter_transformer_condition_configs_run_as_written(tmp_path: Path) -> None:
    """SEED.md's configs verbatim: filter on item fields, map passes through, condition."""
    nodes = [
        {"id": "start", "type": "start", "config": {}},
        {"id": "filter", "type": "filter", "config": {"condition": "value > 10"}},
        {"id": "transformer", "type": "transformer", "config": {"transform_type": "map"}},
        {"id": "condition", "type": "condition", "config": {"condition": "status == 'active'"}},
    ]
    edges = [("start", "filter"), ("filter", "transformer"), ("transformer", "condition")]
    items = [{"value": 5}, {"value": 11}, {"value": 30}]
    async with embedded(tmp_path) as app:
        run = await app.execute_definition(
            definition(nodes, edges), {"items": items, "status": "active"}
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["filter"].output == [{"value": 11}, {"value": 30}]
    assert run.node_states["transformer"].output == [{"value": 11}, {"value": 30}]
    assert run.node_states["condition"].branch == "true"


async def test_rendering_a_nested_templated_config_never_writes_the_spec(tmp_path: Path) -> None:
    # Rendering copies the config only along its templated paths (not the whole config):
    # the spec, shared by every run of the plan, must keep its template.
    renames = definition(
        [
            {"id": "start", "type": "start"},
            {
                "id": "t",
                "type": "transformer",
                "config": {"transform_type": "rename", "mapping": {"a": "{{ input.to }}"}},
            },
        ],
        [("start", "t")],
    )
    async with embedded(tmp_path) as app:
        workflow = await app.create_workflow(renames)
        for target, value in (("first", 1), ("second", 2)):
            run, _ = await app.execute(workflow.id, {"a": value, "to": target}, wait=True)
            assert run.status is RunStatus.SUCCESS, run.error
            assert run.node_states["t"].output[target] == value
        stored = await app.get_workflow(workflow.id)
        t_config = next(n.config for n in stored.definition.nodes if n.id == "t")
        assert t_config["mapping"] == {"a": "{{ input.to }}"}
