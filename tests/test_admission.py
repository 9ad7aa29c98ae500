"""Concurrency limits end to end on an embedded app (issue 11): a workflow's
`settings.max_concurrent_runs` and DUCTWORK_MAX_ACTIVE_RUNS, FIFO, queued_reason,
cancel and retry of waiting runs, and runs without limits left untouched."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import Any

from ductwork.engine.admission import AdmissionControl, run_limits
from ductwork.models import Run, RunStatus, WorkflowDefinition, WorkflowSettings, utcnow
from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType
from ductwork.service import Ductwork
from ductwork.settings import Settings
from ductwork.store.base import Admission
from ductwork.views import run_view
from tests.support.engine import definition, embedded
from tests.support.polling import eventually

RUN_WAIT = 30.0
"""Seconds a test waits for a run to end: a deadline for a stuck run, not a speed check."""

WAITING = "waiting for a slot"


class GateConfig(NodeConfig):
    pass


class GateNode(NodeType[GateConfig]):
    """Holds each run until the test opens its gate; records which runs ran at once."""

    type_name = "gate"
    config_model = GateConfig

    def __init__(self) -> None:
        self.active: set[str] = set()
        self.peak = 0
        """The most runs inside a gate node at the same time."""
        self.started: list[str] = []
        """Runs in the order their gate node started."""
        self._gates: dict[str, asyncio.Event] = {}
        self._fail: set[str] = set()

    def _gate(self, execution_id: str) -> asyncio.Event:
        return self._gates.setdefault(execution_id, asyncio.Event())

    def open(self, execution_id: str) -> None:
        """Let the run's gate node complete."""
        self._gate(execution_id).set()

    def fail(self, execution_id: str) -> None:
        """Let the run's gate node fail (once)."""
        self._fail.add(execution_id)
        self._gate(execution_id).set()

    async def run(self, config: GateConfig, ctx: NodeContext) -> NodeResult:
        eid = ctx.execution_id
        self.active.add(eid)
        self.peak = max(self.peak, len(self.active))
        self.started.append(eid)
        try:
            await self._gate(eid).wait()
        finally:
            self.active.discard(eid)
        if eid in self._fail:
            self._fail.discard(eid)
            self._gates.pop(eid, None)
            raise NodeError("told to fail")
        return NodeResult(output="done")


def gated(limit: int | None = None) -> WorkflowDefinition:
    base = definition([{"id": "gate", "type": "gate"}], [])
    return base.model_copy(update={"settings": WorkflowSettings(max_concurrent_runs=limit)})


async def start(app: Ductwork, workflow_id: str, count: int) -> list[str]:
    """Start `count` runs one after another (so their creation order is known)."""
    ids = []
    for _ in range(count):
        run, _ = await app.execute(workflow_id, {}, wait=False)
        ids.append(run.execution_id)
    return ids


async def waiting_with_reason(app: Ductwork, execution_id: str) -> bool:
    run = await app.get_run(execution_id, with_events=False)
    return run.status is RunStatus.QUEUED and (run.queued_reason or "").startswith(WAITING)


def reasons_logged(run: Run) -> list[str]:
    return [
        str(event.data.get("message"))
        for event in run.events
        if event.type == "log" and str(event.data.get("message", "")).startswith(WAITING)
    ]


async def test_workflow_limit_runs_two_at_a_time_in_fifo_order(tmp_path: Path) -> None:
    gate = GateNode()
    async with embedded(tmp_path, extra_nodes=[gate]) as app:
        wf = await app.create_workflow(gated(2))
        ids = await start(app, wf.id, 5)
        await eventually(lambda: len(gate.started) == 2, what="two runs started")
        for eid in ids[2:]:
            await eventually(lambda eid=eid: waiting_with_reason(app, eid), what="reason set")
        # Offered again by the sweep, they stay queued and log their reason once.
        await app.sweep_once()
        await app.sweep_once()
        waiting = await app.get_run(ids[4])
        view = run_view(waiting)
        assert view["status"] == "queued"
        assert view["queued_reason"] == (
            "waiting for a slot: the workflow allows 2 concurrent runs at once (2 active)"
        )
        logged = reasons_logged(waiting)
        assert logged and all(a != b for a, b in itertools.pairwise(logged))
        assert gate.started == ids[:2]
        # Each finished run hands its slot to the oldest waiting one.
        for done, expected in ((ids[0], ids[2]), (ids[1], ids[3]), (ids[2], ids[4])):
            gate.open(done)
            await eventually(lambda expected=expected: expected in gate.started)
        for eid in ids[3:]:
            gate.open(eid)
        finals = [await app.wait_for(eid, RUN_WAIT) for eid in ids]
    assert [run.status for run in finals] == [RunStatus.SUCCESS] * 5
    assert gate.started == ids
    assert gate.peak == 2
    assert all(run.admitted and run.queued_reason is None for run in finals)
    assert "queued_reason" not in run_view(finals[4])


async def test_global_limit_holds_runs_of_every_workflow(tmp_path: Path) -> None:
    gate = GateNode()
    async with embedded(tmp_path, extra_nodes=[gate], max_active_runs=1) as app:
        first = await app.create_workflow(gated())
        second = await app.create_workflow(gated())
        (a,) = await start(app, first.id, 1)
        await eventually(lambda: gate.started == [a])
        (b,) = await start(app, second.id, 1)
        await eventually(lambda: waiting_with_reason(app, b))
        reason = (await app.get_run(b)).queued_reason
        assert reason == (
            "waiting for a slot: DUCTWORK_MAX_ACTIVE_RUNS allows 1 run of all workflows at "
            "once (1 active)"
        )
        gate.open(a)
        await eventually(lambda: b in gate.started)
        gate.open(b)
        final = await app.wait_for(b, RUN_WAIT)
    assert final.status is RunStatus.SUCCESS
    assert gate.peak == 1


async def test_cancel_a_waiting_run_and_the_next_one_takes_the_slot(tmp_path: Path) -> None:
    gate = GateNode()
    async with embedded(tmp_path, extra_nodes=[gate]) as app:
        wf = await app.create_workflow(gated(1))
        a, b, c = await start(app, wf.id, 3)
        await eventually(lambda: gate.started == [a])
        await eventually(lambda: waiting_with_reason(app, b))
        cancelled = await app.cancel(b)
        assert cancelled.status is RunStatus.CANCELLED
        gate.open(a)
        await eventually(lambda: c in gate.started)
        gate.open(c)
        finals = [await app.wait_for(eid, RUN_WAIT) for eid in (a, b, c)]
    assert [run.status for run in finals] == [
        RunStatus.SUCCESS,
        RunStatus.CANCELLED,
        RunStatus.SUCCESS,
    ]
    assert gate.started == [a, c]


async def test_a_retried_run_waits_for_a_slot_again(tmp_path: Path) -> None:
    gate = GateNode()
    async with embedded(tmp_path, extra_nodes=[gate]) as app:
        wf = await app.create_workflow(gated(1))
        a, b = await start(app, wf.id, 2)
        await eventually(lambda: gate.started == [a])
        gate.fail(a)
        assert (await app.wait_for(a, RUN_WAIT)).status is RunStatus.ERROR
        await eventually(lambda: gate.started == [a, b])
        retried = await app.retry(a)
        assert not retried.admitted
        await eventually(lambda: waiting_with_reason(app, a))
        assert gate.active == {b}
        gate.open(b)
        await eventually(lambda: gate.started == [a, b, a])
        gate.open(a)
        finals = [await app.wait_for(eid, RUN_WAIT) for eid in (a, b)]
    assert [run.status for run in finals] == [RunStatus.SUCCESS, RunStatus.SUCCESS]
    assert gate.peak == 1


async def test_runs_without_limits_never_ask_the_store(tmp_path: Path) -> None:
    gate = GateNode()
    async with embedded(tmp_path, extra_nodes=[gate]) as app:
        calls: list[str] = []
        admit = app.store.admit_run

        async def counting(execution_id: str, *args: Any) -> Admission:
            calls.append(execution_id)
            return await admit(execution_id, *args)

        app.store.admit_run = counting  # type: ignore[method-assign]
        wf = await app.create_workflow(gated())
        ids = await start(app, wf.id, 3)
        await eventually(lambda: len(gate.started) == 3)
        for eid in ids:
            gate.open(eid)
        finals = [await app.wait_for(eid, RUN_WAIT) for eid in ids]
    assert calls == []
    assert all(run.status is RunStatus.SUCCESS and not run.admitted for run in finals)
    assert isinstance(app.admission, AdmissionControl)


async def test_a_sub_workflow_child_runs_within_its_parents_slot(tmp_path: Path) -> None:
    # With one slot for all runs, a parent waiting on its child would hold the slot
    # the child waits for: both stuck until the node timed out.
    async with embedded(tmp_path, max_active_runs=1) as app:
        child = await app.create_workflow(
            definition(
                [
                    {
                        "id": "double",
                        "type": "transformer",
                        "config": {"transform_type": "compose", "mapping": {"twice": "n * 2"}},
                    },
                    {"id": "end", "type": "end"},
                ],
                [("double", "end")],
            ).model_copy(update={"settings": WorkflowSettings(max_concurrent_runs=1)})
        )
        parent = await app.create_workflow(
            definition(
                [
                    {
                        "id": "call",
                        "type": "sub-workflow",
                        "config": {"workflow_id": child.id, "inputs": {"n": "{{ n }}"}},
                    },
                    {"id": "end", "type": "end"},
                ],
                [("call", "end")],
            )
        )
        run, _ = await app.execute(parent.id, {"n": 21}, wait=True, wait_seconds=RUN_WAIT)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.result == {"twice": 42}


async def test_async_sub_workflow_children_wait_for_their_workflows_slot(tmp_path: Path) -> None:
    # Nobody waits for an async child: exempting it let a parent start any number of
    # runs of a workflow limited to one.
    gate = GateNode()
    async with embedded(tmp_path, extra_nodes=[gate]) as app:
        child = await app.create_workflow(gated(1))
        parent = await app.create_workflow(
            definition(
                [
                    {
                        "id": f"call{n}",
                        "type": "sub-workflow",
                        "config": {"workflow_id": child.id, "mode": "async"},
                    }
                    for n in (1, 2)
                ],
                [],
            )
        )
        run, _ = await app.execute(parent.id, {}, wait=True, wait_seconds=RUN_WAIT)
        assert run.status is RunStatus.SUCCESS, run.error
        ids = [run.node_states[f"call{n}"].output["execution_id"] for n in (1, 2)]
        await eventually(lambda: len(gate.started) == 1, what="one child started")
        (first,) = gate.started
        (second,) = [eid for eid in ids if eid != first]
        await eventually(lambda: waiting_with_reason(app, second), what="the other one waits")
        assert (await app.get_run(second, with_events=False)).trigger["mode"] == "async"  # type: ignore[index]
        gate.open(first)
        await eventually(lambda: second in gate.started, what="the slot handed on")
        gate.open(second)
        finals = [await app.wait_for(eid, RUN_WAIT) for eid in ids]
    assert [final.status for final in finals] == [RunStatus.SUCCESS] * 2
    assert gate.peak == 1


def test_only_sync_children_run_outside_the_limits() -> None:
    settings = Settings(max_active_runs=3)
    base = Run(
        execution_id="child",
        workflow_id="wf",
        workflow_version=1,
        status=RunStatus.QUEUED,
        definition=gated(1),
        created_at=utcnow(),
        parent_execution_id="parent",
        parent_node_id="call",
        depth=1,
    )
    trigger = {"type": "sub-workflow", "execution_id": "parent", "node_id": "call"}
    runs = {
        mode: base.model_copy(update={"trigger": {**trigger, "mode": mode}})
        for mode in ("sync", "async")
    }
    assert run_limits(runs["sync"], settings) == (None, None)
    assert run_limits(runs["async"], settings) == (1, 3)
    # A child stored before the mode was recorded counts as sync.
    assert run_limits(base.model_copy(update={"trigger": trigger}), settings) == (None, None)
