"""The `Store` contract for usage and budgets (issue 11), on every store.

`workflow_cost_since` feeds a workflow's daily budget; `workflow_usage` the usage
API (`GET /workflows/{id}/usage`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from ductwork.models import Checkpoint
from ductwork.store.base import Store
from ductwork.usage import UsageDay
from tests.test_store_contract import new_run

DAY = datetime(2030, 3, 4, tzinfo=UTC)


def usage(prompt: int, completion: int, cost: float, model: str = "m") -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost": cost,
        "calls": 1,
        "unpriced_calls": 0,
        "by_model": {model: {"prompt_tokens": prompt, "completion_tokens": completion}},
    }


async def spent(
    db: Store, workflow_id: str, at: datetime, cost: float | None, **usage_: Any
) -> str:
    """A run of `workflow_id` created at `at` that has spent `cost` (None: no LLM call)."""
    run = new_run(workflow_id, created_at=at)
    await db.create_run(run)
    if cost is not None:
        fields = {"usage": usage_.get("usage") or usage(10, 5, cost), "cost": cost}
        await db.checkpoint(run.execution_id, Checkpoint(run_fields=fields))
    return run.execution_id


async def test_workflow_cost_since_sums_the_workflows_runs_from_then_on(store: Store) -> None:
    assert await store.workflow_cost_since("wf", DAY) == 0.0
    await spent(store, "wf", DAY - timedelta(microseconds=1000), 100.0)  # the day before
    first = await spent(store, "wf", DAY, 0.25)  # at `since` exactly: counted
    await spent(store, "wf", DAY + timedelta(hours=23), 0.5)
    await spent(store, "wf", DAY + timedelta(hours=1), None)  # no usage: costs 0
    await spent(store, "other", DAY + timedelta(hours=1), 7.0)  # another workflow
    assert await store.workflow_cost_since("wf", DAY) == 0.75
    assert await store.workflow_cost_since("wf", DAY, exclude_execution_id=first) == 0.5
    assert await store.workflow_cost_since("wf", DAY, exclude_execution_id="nope") == 0.75
    assert await store.workflow_cost_since("wf", DAY + timedelta(days=1)) == 0.0
    assert await store.workflow_cost_since("unknown", DAY) == 0.0


async def test_workflow_cost_since_sees_a_runs_latest_checkpointed_cost(store: Store) -> None:
    run_id = await spent(store, "wf", DAY, 0.1)
    await store.checkpoint(run_id, Checkpoint(run_fields={"usage": usage(20, 9, 0.3), "cost": 0.3}))
    assert await store.workflow_cost_since("wf", DAY) == 0.3


async def test_workflow_usage_sums_per_utc_day(store: Store) -> None:
    assert await store.workflow_usage("wf", DAY) == []
    await spent(store, "wf", DAY - timedelta(seconds=1), 9.0)  # before `since`
    await spent(store, "wf", DAY + timedelta(hours=2), 0.25, usage=usage(100, 50, 0.25))
    # 23:59:59 UTC is still the first day, in whatever zone the database runs.
    await spent(
        store, "wf", DAY + timedelta(hours=23, minutes=59, seconds=59), 0.5, usage=usage(7, 3, 0.5)
    )
    await spent(store, "wf", DAY + timedelta(hours=5), None)  # a run without LLM calls
    # A model name with a dot: MongoDB packs such a usage (see store/mongo.py).
    await spent(store, "wf", DAY + timedelta(days=2), 1.0, usage=usage(1, 2, 1.0, "gpt-4.1"))
    await spent(store, "other", DAY + timedelta(hours=1), 3.0)
    got = await store.workflow_usage("wf", DAY)
    assert got == [
        UsageDay(date(2030, 3, 4), runs=3, prompt_tokens=107, completion_tokens=53, cost=0.75),
        UsageDay(date(2030, 3, 6), runs=1, prompt_tokens=1, completion_tokens=2, cost=1.0),
    ]
    assert got[0].total_tokens == 160
    assert await store.workflow_usage("wf", DAY + timedelta(days=1)) == got[1:]
