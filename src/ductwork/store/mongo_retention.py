"""Retention and versions on MongoDB: deleting runs, listing versions.

`MongoStore`'s "Retention and versions" methods call these with its collections.
The policy itself is `ductwork.retention`'s: these only find what a `PrunePlan`'s
rules match (less what its "Kept while needed" keeps).

Without transactions a run's documents go in this order: the run documents (node
states live inside them) are deleted while finished, then the events
(`workflow_run_events`) of the runs actually deleted. A run retried meanwhile is
not deleted and keeps its events. A prune cut off between the two leaves events
without a run: unreachable (every read goes through the run) and harmless, they
stay as leftovers; never a live run without its events.
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
_UNFINISHED: Document = {"status": {"$nin": list(FINISHED_RUN_STATUSES)}}
_OLDEST_FIRST = [("created_at", ASCENDING), ("execution_id", ASCENDING)]
_NEWEST_FIRST = [("created_at", DESCENDING), ("execution_id", DESCENDING)]


# What a candidate needs to be checked against "Kept while needed".
_CANDIDATE = {"_id": 0, "execution_id": 1, "error_workflow_pending": 1, "parent_execution_id": 1}
# Candidates checked per query for unfinished parents.
_PAGE = 500


async def _needed(runs: AsyncCollection[Document], docs: Sequence[Document]) -> set[str]:
    """Ids among `docs` that `ductwork.retention`'s "Kept while needed" keeps."""
    parents = {doc["parent_execution_id"] for doc in docs if doc.get("parent_execution_id")}
    live: set[str] = set()
    if parents:
        live = {
            doc["execution_id"]
            async for doc in runs.find(
                {"execution_id": {"$in": sorted(parents)}, **_UNFINISHED},
                {"_id": 0, "execution_id": 1},
            )
        }
    return {
        doc["execution_id"]
        for doc in docs
        if doc.get("error_workflow_pending") or doc.get("parent_execution_id") in live
    }


async def _prunable(
    runs: AsyncCollection[Document], plan: PrunePlan, limit: int | None
) -> list[str]:
    """Ids of finished runs `plan` lets go, at most `limit` (None: all)."""
    found: dict[str, None] = {}  # ordered and without repeats (both rules may match a run)

    def room() -> int:
        return 0 if limit is None else limit - len(found)

    async def keep(page: list[Document]) -> None:
        # Kept runs are never candidates (rather than skipped when deleting), so they
        # cannot fill a batch and end a prune early.
        needed = await _needed(runs, page)
        for doc in page:
            if doc["execution_id"] not in needed:
                found.setdefault(doc["execution_id"], None)
                if limit is not None and room() <= 0:
                    return

    async def take(filter_: Document, sort: list[tuple[str, int]], skip: int = 0) -> None:
        if limit is not None and room() <= 0:
            return
        # No cursor limit: runs found already or kept may come, so the cursor reads on
        # (in batches) until the batch is full.
        cursor = runs.find(filter_, _CANDIDATE).sort(sort).skip(skip)
        page: list[Document] = []
        async for doc in cursor:
            page.append(doc)
            if len(page) >= (_PAGE if limit is None else min(_PAGE, room())):
                await keep(page)
                page = []
                if limit is not None and room() <= 0:
                    return
        await keep(page)

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
    runs: AsyncCollection[Document],
    events: AsyncCollection[Document],
    ids: Sequence[str],
    *,
    keep_needed: bool = False,
) -> int:
    """Delete the runs of `ids` that are finished, run documents first; how many.

    `keep_needed` (a prune): also keep what "Kept while needed" keeps, re-checked here.
    """
    if not ids:
        return 0
    docs = [
        doc
        async for doc in runs.find({"execution_id": {"$in": list(ids)}, **_FINISHED}, _CANDIDATE)
    ]
    if keep_needed:
        needed = await _needed(runs, docs)
        docs = [doc for doc in docs if doc["execution_id"] not in needed]
    finished = [doc["execution_id"] for doc in docs]
    if not finished:
        return 0
    # Runs first, each only while still finished: a run retried since it was read
    # stays, with its events. Events go only for the runs actually deleted.
    gone: Document = {"execution_id": {"$in": finished}, **_FINISHED}
    if keep_needed:
        gone["error_workflow_pending"] = {"$ne": True}
    result = await runs.delete_many(gone)
    deleted = int(result.deleted_count)
    if deleted == 0:
        return 0
    if deleted < len(finished):
        left = {
            doc["execution_id"]
            async for doc in runs.find(
                {"execution_id": {"$in": finished}}, {"_id": 0, "execution_id": 1}
            )
        }
        finished = [eid for eid in finished if eid not in left]
    await events.delete_many({"execution_id": {"$in": finished}})
    return deleted


async def prune_runs(
    runs: AsyncCollection[Document],
    events: AsyncCollection[Document],
    plan: PrunePlan,
    limit: int,
) -> int:
    """`Store.prune_runs` on MongoDB: at most `limit` runs."""
    if not plan.deletes_anything:
        return 0
    return await delete_runs(runs, events, await _prunable(runs, plan, limit), keep_needed=True)


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
