"""The retention policy (a pure function) and the pruning job that applies it.

Which runs a plan deletes in each store is tests/test_store_retention.py's; here:
how settings and per-workflow overrides become a plan, and that the sweeping
process prunes by it, batch by batch.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ductwork.models import RunStatus, Workflow, WorkflowDefinition
from ductwork.pruning import Pruner
from ductwork.retention import KEEP_ALL, PrunePlan, RetentionRule, prune_plan
from ductwork.runtime import build
from ductwork.settings import Settings
from ductwork.store.base import RunQuery, Store
from tests.support.polling import eventually

NOW = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


def workflow(workflow_id: str, retention: dict[str, Any] | None = None) -> Workflow:
    body: dict[str, Any] = {"name": workflow_id, "nodes": [{"id": "start", "type": "start"}]}
    if retention is not None:
        body["settings"] = {"retention": retention}
    definition = WorkflowDefinition.model_validate(body)
    return Workflow(id=workflow_id, definition=definition, created_at=NOW, updated_at=NOW)


def test_plan_from_settings_alone() -> None:
    assert prune_plan(None, None, [], NOW) == PrunePlan()
    assert not PrunePlan().deletes_anything
    assert prune_plan(30, 100, [workflow("a")], NOW) == PrunePlan(
        default=RetentionRule(finished_before=NOW - timedelta(days=30), keep_last=100)
    )
    half_a_day = prune_plan(0.5, None, [], NOW).default
    assert half_a_day == RetentionRule(finished_before=NOW - timedelta(hours=12))


def test_a_workflow_overrides_the_fields_it_sets() -> None:
    workflows = [
        workflow("days-only", {"days": 7}),
        workflow("runs-only", {"runs": 5}),
        workflow("both", {"days": 1, "runs": 1}),
        workflow("same-as-default", {"days": 30}),
        workflow("no-settings"),
    ]

    plan = prune_plan(30, 100, workflows, NOW)

    month_ago = NOW - timedelta(days=30)
    assert plan.default == RetentionRule(finished_before=month_ago, keep_last=100)
    # Unset fields fall back to the settings; a rule equal to the default is left out.
    assert plan.overrides == {
        "days-only": RetentionRule(finished_before=NOW - timedelta(days=7), keep_last=100),
        "runs-only": RetentionRule(finished_before=month_ago, keep_last=5),
        "both": RetentionRule(finished_before=NOW - timedelta(days=1), keep_last=1),
    }
    # Runs of deleted workflows and unsaved `file:` runs follow the default.
    assert plan.rule_for("file:flow.json") == plan.default
    assert plan.rule_for("deleted-workflow") == plan.default


def test_overrides_apply_without_global_settings() -> None:
    plan = prune_plan(None, None, [workflow("a", {"runs": 3}), workflow("b", {"runs": 3})], NOW)

    assert plan.default == KEEP_ALL
    assert plan.deletes_anything
    assert plan.groups() == [(RetentionRule(keep_last=3), ["a", "b"])]


def test_a_daily_budget_keeps_the_runs_of_today() -> None:
    budgeted = workflow("budgeted")
    budgeted.definition.settings.max_cost_per_day = 5.0
    both = workflow("both", {"runs": 2})
    both.definition.settings.max_cost_per_day = 5.0

    plan = prune_plan(30, 100, [budgeted, both, workflow("plain")], NOW)

    midnight = datetime(2031, 5, 6, tzinfo=UTC)
    month_ago = NOW - timedelta(days=30)
    assert plan.overrides == {
        "budgeted": RetentionRule(finished_before=month_ago, keep_last=100, kept_since=midnight),
        "both": RetentionRule(finished_before=month_ago, keep_last=2, kept_since=midnight),
    }


# The pruning job ----------------------------------------------------------------------

START_ONLY = {"name": "tiny", "nodes": [{"id": "start", "type": "start"}], "edges": []}


async def run_ids(store: Store, workflow_id: str) -> list[str]:
    runs = await store.find_runs(RunQuery(workflow_id=workflow_id), limit=1000)
    return [run.execution_id for run in runs]


class CountingStore:
    """A store that records the batch sizes `prune_runs` returned."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def prune_runs(self, plan: PrunePlan, limit: int) -> int:
        deleted = await self._store.prune_runs(plan, limit)
        self.batches.append(deleted)
        return deleted


async def test_prune_once_deletes_in_batches_and_keeps_overrides(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, retention_runs=1, prune_batch_size=2)
    app = build(settings, role="isolated")
    await app.start()
    try:
        plain = await app.create_workflow(WorkflowDefinition.model_validate(START_ONLY))
        kept = await app.create_workflow(
            WorkflowDefinition.model_validate(
                {**START_ONLY, "settings": {"retention": {"runs": 3}}}
            )
        )
        for _ in range(5):
            for workflow_id in (plain.id, kept.id):
                run, _created = await app.execute(workflow_id, {}, wait=True)
                assert run.status is RunStatus.SUCCESS
        newest_plain = (await run_ids(app.store, plain.id))[:1]
        newest_kept = (await run_ids(app.store, kept.id))[:3]
        assert await app.pruner.count() == 4 + 2
        counting = CountingStore(app.store)

        pruner = Pruner(counting, settings)  # type: ignore[arg-type]
        assert await pruner.prune_once() == 6

        assert counting.batches == [2, 2, 2, 0]
        assert await run_ids(app.store, plain.id) == newest_plain
        assert await run_ids(app.store, kept.id) == newest_kept
        assert await pruner.prune_once() == 0
    finally:
        await app.close()


async def test_pruning_never_erases_the_spend_a_daily_budget_counts(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, retention_runs=1)
    app = build(settings, role="isolated")
    await app.start()
    try:
        plain = await app.create_workflow(WorkflowDefinition.model_validate(START_ONLY))
        budgeted = await app.create_workflow(
            WorkflowDefinition.model_validate({**START_ONLY, "settings": {"max_cost_per_day": 1.0}})
        )
        for _ in range(3):
            for workflow_id in (plain.id, budgeted.id):
                run, _created = await app.execute(workflow_id, {}, wait=True)
                assert run.status is RunStatus.SUCCESS
        everything_today = await run_ids(app.store, budgeted.id)

        newest_plain = (await run_ids(app.store, plain.id))[:1]

        assert await app.pruner.count() == 2
        assert await app.pruner.prune_once() == 2

        assert await run_ids(app.store, plain.id) == newest_plain
        assert await run_ids(app.store, budgeted.id) == everything_today
    finally:
        await app.close()


async def test_the_sweeping_process_prunes_on_its_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, retention_runs=2, prune_interval_seconds=0.05)
    app = build(settings)
    await app.start()
    try:
        created = await app.create_workflow(WorkflowDefinition.model_validate(START_ONLY))
        for _ in range(4):
            await app.execute(created.id, {}, wait=True)

        async def two_left() -> bool:
            return len(await run_ids(app.store, created.id)) == 2

        await eventually(two_left, what="the sweep pruned the older runs")
    finally:
        await app.close()


class BlockingStore:
    """`prune_runs` that holds the event loop for a while, as SQLite's batches do."""

    def __init__(self, batches: int, hold: float) -> None:
        self.left = batches
        self.hold = hold
        self.calls: list[tuple[float, float]] = []  # (start, end), loop time

    async def list_workflows(self, limit: int = 100, offset: int = 0) -> list[Workflow]:
        return []

    async def prune_runs(self, plan: PrunePlan, limit: int) -> int:
        loop = asyncio.get_running_loop()
        start = loop.time()
        time.sleep(self.hold)  # noqa: ASYNC251  (blocks the loop on purpose, as SQLite does)
        self.calls.append((start, loop.time()))
        self.left -= 1
        return limit if self.left > 0 else 0


async def test_live_work_gets_as_long_as_each_batch_took(tmp_path: Path) -> None:
    store = BlockingStore(batches=4, hold=0.03)
    settings = Settings(data_dir=tmp_path, retention_days=1, prune_batch_size=10)

    await Pruner(store, settings).prune_once()  # type: ignore[arg-type]

    assert len(store.calls) == 4
    for (start, end), (next_start, _) in itertools.pairwise(store.calls):
        # A lower bound: the loop was free at least as long as the batch held it.
        assert next_start - end >= (end - start) - 0.002
