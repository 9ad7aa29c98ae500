"""Retention and versions on MongoDB: deleting runs, listing versions.

`MongoStore`'s "Retention and versions" methods call these with its collections.
The policy itself is `ductwork.retention`'s: these only find what a `PrunePlan`'s
rules match.

Without transactions a run's documents go in this order: the run ids are re-read
as finished, their events (`workflow_run_events`) are deleted, then the run
documents (node states live inside them), again only while finished. A prune cut
off between the two leaves finished runs without events, which the next prune
deletes; never events without a run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from ductwork.retention import PrunePlan, RetentionRule
from ductwork.store._codec import FINISHED_RUN_STATUSES
from ductwork.versions import WorkflowVersionInfo, version_info

Document = dict[str, Any]

_FINISHED: Document = {"status": {"$in": list(FINISHED_RUN_STATUSES)}}
_OLDEST_FIRST = [("created_at", ASCENDING), ("execution_id", ASCENDING)]
_NEWEST_FIRST = [("created_at", DESCENDING), ("execution_id", DESCENDING)]


async def _prunable(
    runs: AsyncCollection[Document], plan: PrunePlan, limit: int | None
) -> list[str]:
    """Ids of finished runs `plan` lets go, at most `limit` (None: all)."""
    found: dict[str, None] = {}  # ordered and without repeats (both rules may match a run)

    def room() -> int:
        return 0 if limit is None else limit - len(found)

    async def take(filter_: Document, sort: list[tuple[str, int]], skip: int = 0) -> None:
        if limit is not None and room() <= 0:
            return
        cursor = runs.find(filter_, {"_id": 0, "execution_id": 1}).sort(sort).skip(skip)
        if limit is not None:
            # Runs found already may come again (at most len(found)): `limit` fills the batch.
            cursor = cursor.limit(limit)
        async for doc in cursor:
            found.setdefault(doc["execution_id"], None)
            if limit is not None and room() <= 0:
                return

    overridden = list(plan.overrides)
    groups: list[tuple[RetentionRule, Document]] = [
        (rule, {"workflow_id": {"$in": ids}}) for rule, ids in plan.groups()
    ]
    groups.append((plan.default, {"workflow_id": {"$nin": overridden}} if overridden else {}))
    for rule, scope in groups:
        kept_since = rule.kept_since
        if rule.finished_before is not None:
            cutoff = rule.finished_before
            await take(
                {
                    **_FINISHED,
                    **scope,
                    # end_time >= created_at: the created_at bound narrows the index scan.
                    "created_at": {
                        "$lt": cutoff if kept_since is None else min(cutoff, kept_since)
                    },
                    "$or": [{"end_time": None}, {"end_time": {"$lt": cutoff}}],
                },
                _OLDEST_FIRST,
            )
        if rule.keep_last is not None:
            for workflow_id in sorted(await runs.distinct("workflow_id", {**_FINISHED, **scope})):
                if limit is not None and room() <= 0:
                    break
                own: Document = {**_FINISHED, "workflow_id": workflow_id}
                skip = rule.keep_last
                if kept_since is not None:
                    # Runs created since `kept_since` stay but still rank first (newest).
                    kept = await runs.count_documents({**own, "created_at": {"$gte": kept_since}})
                    own["created_at"] = {"$lt": kept_since}
                    skip = max(0, skip - kept)
                await take(own, _NEWEST_FIRST, skip=skip)
        if limit is not None and room() <= 0:
            break
    return list(found)


async def delete_runs(
    runs: AsyncCollection[Document], events: AsyncCollection[Document], ids: Sequence[str]
) -> int:
    """Delete the runs of `ids` that are finished, events first; how many."""
    if not ids:
        return 0
    finished = [
        doc["execution_id"]
        async for doc in runs.find(
            {"execution_id": {"$in": list(ids)}, **_FINISHED}, {"_id": 0, "execution_id": 1}
        )
    ]
    if not finished:
        return 0
    await events.delete_many({"execution_id": {"$in": finished}})
    result = await runs.delete_many({"execution_id": {"$in": finished}, **_FINISHED})
    return int(result.deleted_count)


async def prune_runs(
    runs: AsyncCollection[Document],
    events: AsyncCollection[Document],
    plan: PrunePlan,
    limit: int,
) -> int:
    """`Store.prune_runs` on MongoDB: at most `limit` runs."""
    if not plan.deletes_anything:
        return 0
    return await delete_runs(runs, events, await _prunable(runs, plan, limit))


async def count_prunable_runs(runs: AsyncCollection[Document], plan: PrunePlan) -> int:
    """`Store.count_prunable_runs` on MongoDB."""
    if not plan.deletes_anything:
        return 0
    return len(await _prunable(runs, plan, None))


async def list_workflow_versions(
    versions: AsyncCollection[Document],
    workflow_id: str,
    limit: int,
    offset: int,
    unpack: Any,
) -> list[WorkflowVersionInfo]:
    """`Store.list_workflow_versions` on MongoDB (`unpack`: the store's value decoder)."""
    cursor = (
        versions.find({"workflow_id": workflow_id}, {"_id": 0})
        .sort("version", DESCENDING)
        .skip(offset)
        .limit(limit)
    )
    return [
        version_info(doc["version"], doc["created_at"], unpack(doc["definition"]))
        async for doc in cursor
    ]
