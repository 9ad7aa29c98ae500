"""Retention and versions on SQL (SQLite and PostgreSQL): deleting runs, listing versions.

`SqlStore`'s "Retention and versions" methods call these with its backend. The
policy itself is `ductwork.retention`'s: these only turn a `PrunePlan`'s rules (and
its "Kept while needed") into WHERE clauses.

A batch is one write transaction: the run rows are locked (PostgreSQL: `FOR
UPDATE`; SQLite's write transaction holds the database), re-checked as finished,
then their events, node states and rows are deleted, so no batch leaves an orphan
and a run retried meanwhile is never touched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, not_, or_, select
from sqlalchemy.sql import ColumnElement, Select

from ductwork.retention import PrunePlan, RetentionRule
from ductwork.store._codec import FINISHED_RUN_STATUSES
from ductwork.store.sql_schema import (
    _Backend,
    _Session,
    node_states,
    run_events,
    workflow_runs,
    workflow_versions,
)
from ductwork.versions import WorkflowVersionInfo, version_info

_R = workflow_runs.c
_FINISHED = _R.status.in_(FINISHED_RUN_STATUSES)
_PARENT = workflow_runs.alias("parent")


def _needed(columns: Any) -> ColumnElement[bool]:
    """The runs `ductwork.retention`'s "Kept while needed" keeps, over `columns`."""
    live_parent = (
        select(_PARENT.c.execution_id)
        .where(
            _PARENT.c.execution_id == columns.parent_execution_id,
            _PARENT.c.status.not_in(FINISHED_RUN_STATUSES),
        )
        .exists()
    )
    return or_(columns.error_workflow_pending, live_parent)


def _matches(rule: RetentionRule, columns: Any) -> ColumnElement[bool] | None:
    """The rows `rule` deletes, over `columns` (the runs table's or the ranked subquery's)."""
    clauses: list[ColumnElement[bool]] = []
    if rule.finished_before is not None:
        cutoff = rule.finished_before
        # end_time >= created_at, so the created_at bound lets the index narrow the scan.
        clauses.append(
            and_(
                columns.created_at < cutoff,
                or_(columns.end_time.is_(None), columns.end_time < cutoff),
            )
        )
    if rule.keep_last is not None:
        clauses.append(columns.rank > rule.keep_last)
    if not clauses:
        return None
    if rule.kept_since is not None:
        return and_(or_(*clauses), columns.created_at < rule.kept_since)
    return or_(*clauses)


def prunable(plan: PrunePlan) -> Select[Any] | None:
    """The ids of the finished runs `plan` lets go (None: it lets none go), oldest first."""
    groups = plan.groups()
    overridden = list(plan.overrides)
    ranked = plan.default.keep_last is not None or any(r.keep_last is not None for r, _ in groups)
    if ranked:
        # Newest first per workflow, among finished runs only (find_runs' order).
        rank = func.row_number().over(
            partition_by=_R.workflow_id, order_by=(_R.created_at.desc(), _R.execution_id.desc())
        )
        source: Any = (
            select(
                _R.execution_id,
                _R.workflow_id,
                _R.created_at,
                _R.end_time,
                _R.error_workflow_pending,
                _R.parent_execution_id,
                rank.label("rank"),
            )
            .where(_FINISHED)
            .subquery("ranked")
        ).c
    else:
        source = _R
    wheres: list[ColumnElement[bool]] = []
    for rule, ids in groups:
        matches = _matches(rule, source)
        if matches is not None:
            wheres.append(and_(source.workflow_id.in_(ids), matches))
    matches = _matches(plan.default, source)
    if matches is not None:
        wheres.append(
            and_(source.workflow_id.not_in(overridden), matches) if overridden else matches
        )
    if not wheres:
        return None
    # Kept runs are never candidates (rather than skipped when deleting), so they
    # cannot fill a batch and end a prune early.
    statement = select(source.execution_id).where(or_(*wheres), not_(_needed(source)))
    if not ranked:
        statement = statement.where(_FINISHED)
    return statement.order_by(source.created_at, source.execution_id)


async def prune_runs(backend: _Backend, plan: PrunePlan, limit: int) -> int:
    """`Store.prune_runs` on SQL: one transaction of at most `limit` runs."""
    candidates = prunable(plan)
    if candidates is None:
        return 0
    async with backend.transaction(write=True) as session:
        ids = list((await session.execute(candidates.limit(limit), {})).scalars())
        return await _delete(session, ids, _LOCK_PRUNABLE)


async def delete_run(backend: _Backend, execution_id: str) -> bool:
    """`Store.delete_run` on SQL."""
    async with backend.transaction(write=True) as session:
        return bool(await _delete(session, [execution_id], _LOCK_FINISHED))


async def count_prunable_runs(backend: _Backend, plan: PrunePlan) -> int:
    """`Store.count_prunable_runs` on SQL."""
    candidates = prunable(plan)
    if candidates is None:
        return 0
    counted = select(func.count()).select_from(candidates.order_by(None).subquery())
    async with backend.transaction(write=False) as session:
        return int((await session.execute(counted, {})).scalar_one())


_LOCK_FINISHED = (
    select(_R.execution_id)
    .where(_R.execution_id.in_(bindparam("eids", expanding=True)), _FINISHED)
    .with_for_update()
)
# A prune re-checks "Kept while needed" too: a parent retried since the pick keeps its child.
_LOCK_PRUNABLE = _LOCK_FINISHED.where(not_(_needed(_R)))
_DELETE_EVENTS = delete(run_events).where(
    run_events.c.execution_id.in_(bindparam("eids", expanding=True))
)
_DELETE_STATES = delete(node_states).where(
    node_states.c.execution_id.in_(bindparam("eids", expanding=True))
)
_DELETE_RUNS = delete(workflow_runs).where(_R.execution_id.in_(bindparam("eids", expanding=True)))


# Ids per statement: SQLite takes at most 32,766 bound parameters.
_CHUNK = 5000


async def _delete(session: _Session, ids: Sequence[str], lock: Select[Any]) -> int:
    """Delete the runs of `ids` that `lock` (still) selects, children first; how many."""
    deleted = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = list(ids[start : start + _CHUNK])
        # Locked and re-checked in this transaction: a retry that made one unfinished
        # since it was picked keeps it, and cannot change it before the commit.
        finished = list((await session.execute(lock, {"eids": chunk})).scalars())
        if not finished:
            continue
        params = {"eids": finished}
        await session.execute(_DELETE_EVENTS, params)
        await session.execute(_DELETE_STATES, params)
        deleted += int((await session.execute(_DELETE_RUNS, params)).rowcount)
    return deleted


_V = workflow_versions.c
_LIST_VERSIONS = (
    select(_V.version, _V.created_at, _V.definition)
    .where(_V.workflow_id == bindparam("wid"))
    .order_by(_V.version.desc())
    .limit(bindparam("limit"))
    .offset(bindparam("offset"))
)


async def list_workflow_versions(
    backend: _Backend, workflow_id: str, limit: int, offset: int
) -> list[WorkflowVersionInfo]:
    """`Store.list_workflow_versions` on SQL."""
    params = {"wid": workflow_id, "limit": limit, "offset": offset}
    async with backend.transaction(write=False) as session:
        rows = (await session.execute(_LIST_VERSIONS, params)).all()
    return [version_info(row.version, row.created_at, row.definition) for row in rows]
