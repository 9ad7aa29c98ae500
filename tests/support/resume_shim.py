"""TEMPORARY: `Store.resume_node` for stores that do not implement it yet.

The store helper's branch (issue10-store) implements it in SQL and MongoDB; until
that lands on main, the wait tests install this stand-in (same rule, but not a
single compare-and-set write). Delete this file once `SqlStore.resume_node` exists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ductwork.models import Checkpoint, NodeStatus
from ductwork.store.base import ResumeOutcome
from ductwork.store.mongo import MongoStore
from ductwork.store.sql import SqlStore


async def _resume_node(
    self: Any, execution_id: str, node_id: str, payload: Any, now: datetime
) -> ResumeOutcome:
    run = await self.get_run(execution_id, with_events=False)
    if run is None or node_id not in {node.id for node in run.definition.nodes}:
        return "not_found"
    state = run.node_states.get(node_id)
    if state is None:
        return "not_waiting"
    if state.meta.get("resumed") is True:
        return "used"
    if state.status is not NodeStatus.WAITING or state.meta.get("resumable") is not True:
        return "not_waiting"
    if state.wake_at is not None and state.wake_at <= now:
        return "not_waiting"
    meta = {**state.meta, "resumed": True, "resume_payload": payload}
    await self.checkpoint(
        execution_id,
        Checkpoint(
            node_states={node_id: state.model_copy(update={"meta": meta})},
            run_fields={"wake_at": now},
        ),
    )
    return "resumed"


def install() -> None:
    """Give the stores a `resume_node` where they have none."""
    for store in (SqlStore, MongoStore):
        if not hasattr(store, "resume_node"):
            store.resume_node = _resume_node  # type: ignore[attr-defined]
