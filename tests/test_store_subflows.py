"""Store contract for sub-workflows (issue 11): child runs keep their parent link and
`RunQuery.parent_execution_id` finds them; SQLite, PostgreSQL and MongoDB alike."""

from __future__ import annotations

from datetime import timedelta

from ductwork.models import Run, RunStatus
from ductwork.store.base import RunQuery, Store
from tests.test_store_contract import T0, new_run


def child_of(parent: Run, node_id: str, *, minutes: int = 1) -> Run:
    child = new_run("wf-child", created_at=T0 + timedelta(minutes=minutes), label="child")
    return child.model_copy(
        update={
            "parent_execution_id": parent.execution_id,
            "parent_node_id": node_id,
            "depth": parent.depth + 1,
            "idempotency_key": f"sub:{parent.execution_id}:{node_id}",
            "trigger": {
                "type": "sub-workflow",
                "execution_id": parent.execution_id,
                "workflow_id": parent.workflow_id,
                "node_id": node_id,
            },
        }
    )


async def test_child_runs_keep_their_parent_link(store: Store) -> None:
    parent = await store.create_run(new_run("wf-parent", label="parent"))
    child = await store.create_run(child_of(parent, "call[3]"))
    loaded = await store.get_run(child.execution_id)
    assert loaded is not None
    assert (loaded.parent_execution_id, loaded.parent_node_id, loaded.depth) == (
        parent.execution_id,
        "call[3]",
        1,
    )
    again = await store.get_run(parent.execution_id)
    assert again is not None
    assert (again.parent_execution_id, again.parent_node_id, again.depth) == (None, None, 0)


async def test_find_runs_by_parent(store: Store) -> None:
    parent = await store.create_run(new_run("wf-parent", label="parent"))
    other = await store.create_run(new_run("wf-parent", label="other"))
    first = await store.create_run(child_of(parent, "a", minutes=1))
    second = await store.create_run(child_of(parent, "b", minutes=2))
    await store.create_run(child_of(other, "a", minutes=3))
    grandchild = await store.create_run(child_of(first, "deep", minutes=4))

    found = await store.find_runs(RunQuery(parent_execution_id=parent.execution_id))
    assert [run.execution_id for run in found] == [second.execution_id, first.execution_id]
    deeper = await store.find_runs(RunQuery(parent_execution_id=first.execution_id))
    assert [(run.execution_id, run.depth) for run in deeper] == [(grandchild.execution_id, 2)]
    # Combined with the other filters, and paged like every list.
    assert (
        await store.find_runs(
            RunQuery(parent_execution_id=parent.execution_id, status=RunStatus.RUNNING)
        )
        == []
    )
    page = await store.find_runs(
        RunQuery(parent_execution_id=parent.execution_id), limit=1, offset=1
    )
    assert [run.execution_id for run in page] == [first.execution_id]
    assert await store.find_runs(RunQuery(parent_execution_id="no-such-run")) == []
