"""Usage and cost accounting and budgets, on the embedded engine (issue 11).

A `spend` node (tests/support/engine.py) stands in for an LLM node: it asks
`check_budget` before each call and reports `meta.usage` as an AI node does.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from ductwork.cli import RunProgress, usage_text
from ductwork.engine.budget import RunBudget
from ductwork.models import Checkpoint, NodeStatus, Run, RunStatus, WorkflowDefinition, utcnow
from ductwork.service import Ductwork
from ductwork.views import run_view
from tests.support.engine import ProbeNode, SpendNode, definition, embedded
from tests.support.polling import eventually

PRICES = {"priced/model": {"input": 1.0, "output": 2.0}}
"""Dollars per million prompt / completion tokens."""


def spend(node_id: str, **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": "spend", "config": config}


def chain(*nodes: dict[str, Any], **settings: Any) -> WorkflowDefinition:
    """start -> nodes... -> end, with workflow `settings` (budgets)."""
    all_nodes = [{"id": "start", "type": "start"}, *nodes, {"id": "end", "type": "end"}]
    ids = [node["id"] for node in all_nodes]
    flow = definition(all_nodes, list(itertools.pairwise(ids)))
    return flow.model_copy(update={"settings": flow.settings.model_copy(update=settings)})


async def run_of(app: Ductwork, workflow: WorkflowDefinition) -> Run:
    stored = await app.create_workflow(workflow)
    run, _ = await app.execute(stored.id, wait=True, wait_seconds=30)
    assert run.status.finished
    return run


async def test_run_usage_sums_its_nodes_by_model_priced_or_reported(tmp_path: Path) -> None:
    spender = SpendNode()
    async with embedded(tmp_path, extra_nodes=[spender], llm_prices=PRICES) as app:
        flow = chain(
            # Priced from the table: 1000 * $1/M + 500 * $2/M = $0.002.
            spend("a", model="priced/model", prompt_tokens=1000, completion_tokens=500),
            # The provider's reported cost wins over the table.
            spend("b", model="priced/model", prompt_tokens=10, completion_tokens=10, cost=0.5),
            # Neither: counted as unpriced, costs nothing.
            spend("c", model="free/model", prompt_tokens=7, completion_tokens=3, calls=2),
        )
        run = await run_of(app, flow)
        stored = await app.store.get_run(run.execution_id)
    assert run.status is RunStatus.SUCCESS, run.error
    assert stored is not None
    for got in (run, stored):
        assert got.cost == pytest.approx(0.502)
        assert got.usage is not None
        usage = got.usage
        assert usage["prompt_tokens"] == 1017 and usage["completion_tokens"] == 513
        assert usage["total_tokens"] == 1530
        assert usage["calls"] == 4 and usage["unpriced_calls"] == 2
        assert usage["cost"] == pytest.approx(0.502)
        assert usage["by_model"]["priced/model"]["calls"] == 2
        assert usage["by_model"]["priced/model"]["cost"] == pytest.approx(0.502)
        assert usage["by_model"]["free/model"] == {
            "prompt_tokens": 7,
            "completion_tokens": 3,
            "cost": 0.0,
            "calls": 2,
        }
    # Each node keeps its own usage, priced.
    assert stored.node_states["a"].meta["usage"]["cost"] == pytest.approx(0.002)
    assert stored.node_states["b"].meta["usage"]["cost"] == 0.5
    assert stored.node_states["c"].meta["usage"]["cost"] is None
    completed = {e.node_id: e.data for e in stored.events if e.type == "node_completed"}
    assert completed["a"]["usage"]["cost"] == pytest.approx(0.002)
    assert "usage" not in completed["start"]
    finished = [e for e in stored.events if e.type == "run_finished"]
    assert finished[0].data["usage"] == stored.usage


async def test_a_run_without_llm_calls_has_no_usage(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        run = await run_of(app, chain({"id": "t", "type": "transformer", "config": {}}))
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.usage is None and run.cost == 0.0
    assert "usage" not in next(e for e in run.events if e.type == "run_finished").data


async def test_a_resumed_run_adds_to_the_usage_it_had(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[SpendNode()]) as app:
        flow = chain(spend("a", model="m", prompt_tokens=1, completion_tokens=2, cost=0.25))
        before = {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.5, "calls": 1}
        before["by_model"] = {"m": {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.5}}
        run = await app.store.create_run(
            Run(
                execution_id="resumed",
                workflow_id="wf",
                workflow_version=1,
                definition=flow,
                created_at=utcnow(),
            )
        )
        # As a worker that died after an earlier node would have left it.
        await app.store.checkpoint(run.execution_id, Checkpoint(run_fields={"usage": before}))
        await app.executor.advance(run.execution_id)
        got = await app.get_run(run.execution_id)
    assert got.status is RunStatus.SUCCESS, got.error
    assert got.usage is not None
    assert got.cost == pytest.approx(0.75) and got.usage["cost"] == pytest.approx(0.75)
    assert got.usage["calls"] == 2 and got.usage["prompt_tokens"] == 11
    assert got.usage["by_model"]["m"]["calls"] == 1  # only what this driver counted


async def test_max_cost_per_run_stops_the_run_before_the_call_that_would_exceed_it(
    tmp_path: Path,
) -> None:
    spender = SpendNode()
    async with embedded(tmp_path, extra_nodes=[spender]) as app:
        flow = chain(
            spend("a", cost=0.06, estimate=0.05),
            # A retry policy does not make the budget try again.
            {**spend("b", cost=0.06, estimate=0.05), "retry": {"max_attempts": 3}},
            max_cost_per_run=0.1,
        )
        run = await run_of(app, flow)
    assert run.status is RunStatus.ERROR
    message = (
        "budget: this call could cost up to $0.05; the run has spent $0.06 of its "
        "max_cost_per_run $0.10"
    )
    assert run.error == f"node b failed: {message}"
    assert spender.calls == {(run.execution_id, "a"): 1}  # b never called upstream
    b = run.node_states["b"]
    assert b.status is NodeStatus.FAILED and b.error == message and b.attempts == 1
    assert run.cost == pytest.approx(0.06)


async def test_parallel_calls_cannot_all_pass_on_the_same_remaining_budget(
    tmp_path: Path,
) -> None:
    spender = SpendNode()
    async with embedded(tmp_path, extra_nodes=[spender]) as app:
        # Both are checked before either has spent (and reported) anything.
        nodes = [
            {"id": "start", "type": "start"},
            {**spend("a", cost=0.06, estimate=0.06, hold=True), "on_error": "continue"},
            {**spend("b", cost=0.06, estimate=0.06, hold=True), "on_error": "continue"},
        ]
        flow = definition(nodes, [("start", "a"), ("start", "b")])
        flow.settings.max_cost_per_run = 0.1
        workflow = await app.create_workflow(flow)
        started, _ = await app.execute(workflow.id)

        async def one_failed() -> bool:
            got = await app.get_run(started.execution_id, with_events=False)
            states = [got.node_states.get(n) for n in ("a", "b")]
            return any(s is not None and s.status is NodeStatus.FAILED for s in states)

        await eventually(one_failed)
        spender.release()
        run = await app.wait_for(started.execution_id, 30)
    statuses = sorted(run.node_states[n].status.value for n in ("a", "b"))
    assert statuses == ["completed", "failed"]
    failed = next(s for n, s in run.node_states.items() if s.status is NodeStatus.FAILED)
    assert failed.error is not None
    assert "(and $0.06 is held by calls in flight)" in failed.error
    assert sum(spender.calls.values()) == 1


async def test_max_cost_per_day_counts_the_workflows_other_runs_of_today(
    tmp_path: Path,
) -> None:
    spender = SpendNode()
    async with embedded(tmp_path, extra_nodes=[spender]) as app:
        flow = chain(spend("a", cost=0.06, estimate=0.05), max_cost_per_day=0.1)
        workflow = await app.create_workflow(flow)
        # Spending that does not count: yesterday's run, and another workflow's run.
        yesterday = Run(
            execution_id="yesterday",
            workflow_id=workflow.id,
            workflow_version=1,
            definition=flow,
            created_at=utcnow() - timedelta(days=1, hours=1),
        )
        await app.store.create_run(yesterday)
        await app.store.checkpoint("yesterday", Checkpoint(run_fields={"cost": 5.0}))
        other = await run_of(app, chain(spend("a", cost=1.0)))
        assert other.cost == 1.0
        first, _ = await app.execute(workflow.id, wait=True, wait_seconds=30)
        assert first.status is RunStatus.SUCCESS, first.error
        second, _ = await app.execute(workflow.id, wait=True, wait_seconds=30)
    assert second.status is RunStatus.ERROR
    assert second.error == (
        "node a failed: budget: this call could cost up to $0.05; the workflow has spent "
        "$0.06 today (UTC) of its max_cost_per_day $0.10"
    )
    assert (second.execution_id, "a") not in spender.calls
    assert spender.calls[(first.execution_id, "a")] == 1


async def test_the_cli_shows_a_runs_usage_from_its_view_and_its_events(tmp_path: Path) -> None:
    async with embedded(tmp_path, extra_nodes=[SpendNode()]) as app:
        flow = chain(
            spend("a", model="m", prompt_tokens=1200, completion_tokens=300, cost=0.0004),
            spend("b", model="unknown", prompt_tokens=0, completion_tokens=40),
        )
        run = await run_of(app, flow)
    view = run_view(run, include_definition=True)
    expected = (
        "1,540 tokens (1,200 in, 340 out), 2 LLM calls, $0.0004 "
        "(1 unpriced, not counted: see DUCTWORK_LLM_PRICES)"
    )
    assert view["usage"] is not None and usage_text(view["usage"]) == expected
    assert RunProgress(view).usage == run.usage
    # Followed live: the snapshot of a run not started yet, then its events.
    progress = RunProgress({**view, "status": "queued", "usage": None, "node_states": {}})
    for event in run.events:
        progress.apply(event)
    assert progress.usage == run.usage


async def test_what_failed_attempts_spent_counts_and_stops_the_next_attempt(
    tmp_path: Path,
) -> None:
    spender = SpendNode()
    async with embedded(tmp_path, extra_nodes=[spender]) as app:
        retry = {"max_attempts": 5, "backoff_seconds": 0}
        flow = chain(
            {**spend("a", cost=0.04, estimate=0.01, fail=True, prompt_tokens=5), "retry": retry},
            max_cost_per_run=0.1,
        )
        run = await run_of(app, flow)
    # Attempts 1-3 fit and spent $0.04 each; the 4th is refused ($0.12 + $0.01 > $0.10).
    assert spender.calls == {(run.execution_id, "a"): 3}
    assert run.usage is not None and run.usage["prompt_tokens"] == 15
    assert run.cost == pytest.approx(0.12)
    assert run.node_states["a"].attempts == 4
    assert run.error is not None and "the run has spent $0.12" in run.error


async def test_odd_estimates_neither_poison_nor_bypass_the_budget(tmp_path: Path) -> None:
    run = Run(
        execution_id="r",
        workflow_id="wf",
        workflow_version=1,
        definition=chain(max_cost_per_run=1.0),
        created_at=utcnow(),
    )
    async with embedded(tmp_path) as app:
        budget = RunBudget(run, app.store, {})
        assert await budget.refusal("a", float("nan")) is None
        assert await budget.refusal("b", -5) is None
        refused = await budget.refusal("c", float("inf"))
        assert refused is not None and "could cost up to $inf" in refused
        assert await budget.refusal("d", 0.75) is None
        refused = await budget.refusal("e", 0.5)
        assert refused == (
            "budget: this call could cost up to $0.50; the run has spent $0.00 (and $0.75 is "
            "held by calls in flight) of its max_cost_per_run $1.00"
        )
        budget.record("d", {"usage": {"model": "m", "cost": 0.123456}})
        assert await budget.refusal("f", 0.9) == (
            "budget: this call could cost up to $0.90; the run has spent $0.1235 of its "
            "max_cost_per_run $1.00"
        )


async def test_an_unbilled_failed_attempt_does_not_hold_its_estimate_into_the_retry(
    tmp_path: Path,
) -> None:
    spender = SpendNode()
    async with embedded(tmp_path, extra_nodes=[spender]) as app:
        retry = {"max_attempts": 3, "backoff_seconds": 0}
        # Attempt 1 passes the check ($0.60 held), then fails with a 503 (nothing
        # billed); attempt 2 must find the whole budget again, not $0.40.
        flow = chain(
            {**spend("a", cost=0.6, estimate=0.6, fail_unbilled=1), "retry": retry},
            max_cost_per_run=1.0,
        )
        run = await run_of(app, flow)
    assert run.status is RunStatus.SUCCESS, run.error
    assert spender.calls == {(run.execution_id, "a"): 2}
    assert run.node_states["a"].attempts == 2
    assert run.cost == pytest.approx(0.6)


async def test_body_nodes_cancelled_by_a_failed_item_do_not_hold_their_estimates(
    tmp_path: Path,
) -> None:
    spender, probe = SpendNode(), ProbeNode()
    nodes = [
        {"id": "start", "type": "start"},
        {
            "id": "loop",
            "type": "loop",
            "config": {"items": "{{ input.rows }}", "concurrency": 2},
            "on_error": "continue",
        },
        # Item 0 holds $0.60 and waits; item 1 fails, cancelling item 0.
        {
            "id": "s",
            "type": "spend",
            "parent": "loop",
            "config": {"estimate": "{{ 0.6 if item == 0 else 0 }}", "hold": "{{ item == 0 }}"},
        },
        {"id": "p", "type": "probe", "parent": "loop", "config": {"hold": True, "fatal": True}},
        spend("after", cost=0.6, estimate=0.6),
        {"id": "end", "type": "end"},
    ]
    flow = definition(nodes, [("start", "loop"), ("s", "p"), ("loop", "after"), ("after", "end")])
    flow.settings.max_cost_per_run = 1.0
    async with embedded(tmp_path, extra_nodes=[spender, probe]) as app:
        workflow = await app.create_workflow(flow)
        started, _ = await app.execute(workflow.id, {"rows": [0, 1]})
        run_id = started.execution_id
        await eventually(
            lambda: (run_id, "s[0]") in spender.calls and (run_id, "p[1]") in probe.calls
        )
        probe.release()
        run = await app.wait_for(run_id, 30)
    assert run.status is RunStatus.SUCCESS, run.error
    assert run.node_states["loop"].status is NodeStatus.FAILED
    assert run.node_states["s[0]"].status is NodeStatus.CANCELLED
    assert run.node_states["after"].status is NodeStatus.COMPLETED, run.node_states["after"]
    assert spender.calls[(run_id, "after")] == 1
