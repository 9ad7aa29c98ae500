"""The `Store` contract, run against every store: SQLite, PostgreSQL, MongoDB.

MongoDB runs on SecantusDB (started by the tests) and, when
DUCTWORK_TEST_MONGODB_URL is set, on that real mongod too.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    create_engine,
    insert,
    inspect,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    Workflow,
    WorkflowDefinition,
)
from ductwork.store._codec import prefix_end
from ductwork.store.base import (
    DuplicateRun,
    LeaseLost,
    PartialCheckpoint,
    RunQuery,
    Store,
    StoreError,
    TriggerConflict,
    UnstorableValue,
)
from ductwork.store.factory import create_store
from ductwork.store.mongo import MongoStore
from ductwork.store.mongo import _event_doc as mongo_event_doc
from ductwork.store.sql import (
    SCHEMA_VERSION,
    UPGRADES,
    SqlStore,
    find_runs_statement,
    migrate,
    schema_version,
    workflows,
)
from tests.support.sql_schema_v1 import (
    V1_IDEMPOTENCY_KEY,
    V1_RUN_ID,
    V1_WORKFLOW_ID,
    create_v1_database,
)
from tests.support.stores import postgres_execute, service_unavailable, unique_name

T0 = datetime(2030, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
"""A fixed instant with microseconds, so truncation would show."""


def stored(kind: str, value: datetime) -> datetime:
    """What a store gives back for `value`: BSON dates hold milliseconds only."""
    if kind.startswith("mongodb"):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    return value


def definition(name: str = "flow", *node_ids: str) -> WorkflowDefinition:
    ids = node_ids or ("start", "end")
    return WorkflowDefinition.model_validate(
        {
            "name": name,
            "nodes": [{"id": node_id, "type": "transformer"} for node_id in ids],
            "edges": [{"from": a, "to": b} for a, b in itertools.pairwise(ids)],
            "variables": {"greeting": "hi"},
        }
    )


def new_run(
    workflow_id: str = "wf-1",
    *,
    created_at: datetime = T0,
    key: str | None = None,
    label: str = "run",
    trigger: dict[str, Any] | None = None,
) -> Run:
    return Run(
        execution_id=f"{label}-{uuid.uuid4()}",
        workflow_id=workflow_id,
        workflow_version=1,
        definition=definition(),
        variables={"user": "Ada"},
        created_at=created_at,
        idempotency_key=key,
        trigger=trigger,
    )


def event(seq: int, node_id: str | None = None, **data: Any) -> Event:
    return Event(seq=seq, type="log", node_id=node_id, timestamp=T0, data=data)


async def stored_run(store: Store, run: Run, **fields: Any) -> Run:
    """Create `run`, then set run fields (status etc.) through a checkpoint."""
    await store.create_run(run)
    if fields:
        await store.checkpoint(run.execution_id, Checkpoint(run_fields=fields))
    got = await store.get_run(run.execution_id)
    assert got is not None
    return got


async def runs_of(
    store: Store, workflow_id: str, *, limit: int = 100, offset: int = 0
) -> list[Run]:
    """A workflow's runs as `GET /workflows/{id}/executions` reads them (with events)."""
    query = RunQuery(workflow_id=workflow_id)
    return await store.find_runs(query, limit=limit, offset=offset, with_events=True)


async def test_starting_a_started_store_again_changes_nothing(store: Store) -> None:
    run = await store.create_run(new_run())
    await store.start()
    got = await store.get_run(run.execution_id)
    assert got is not None and got.execution_id == run.execution_id


# Workflows ---------------------------------------------------------------------------


async def test_list_workflows_searches_names_literally_in_any_case(store: Store) -> None:
    names = [
        "Nightly ETL",  # oldest
        "100% done",
        "1000 done",
        "snake_case",
        "snakeXcase",
        "a.*(b",
        "axxb",
        "back\\slash/and/slash",
        "Ärger im Büro",
        "nightly etl copy",  # newest
    ]
    for index, name in enumerate(names):
        at = T0 + timedelta(minutes=index)
        await store.create_workflow(
            Workflow(id=f"wf-{index}", definition=definition(name), created_at=at, updated_at=at)
        )

    async def found(q: str | None, limit: int = 100, offset: int = 0) -> list[str]:
        page = await store.list_workflows(limit=limit, offset=offset, q=q)
        return [w.definition.name for w in page]

    everything = list(reversed(names))
    assert await found(None) == everything
    assert await found("") == everything
    # Case-insensitive substring, newest first.
    assert await found("NIGHTLY") == ["nightly etl copy", "Nightly ETL"]
    assert await found("tl c") == ["nightly etl copy"]
    assert await found("äRGER") == ["Ärger im Büro"]
    # LIKE wildcards are plain characters.
    assert await found("%") == ["100% done"]
    assert await found("0% d") == ["100% done"]
    assert await found("_") == ["snake_case"]
    assert await found("e_c") == ["snake_case"]
    # Regex metacharacters too.
    assert await found("a.*(b") == ["a.*(b"]
    assert await found(".*") == ["a.*(b"]
    assert await found("(") == ["a.*(b"]
    assert await found("x+") == []
    # The escape characters a store might use.
    assert await found("\\") == ["back\\slash/and/slash"]
    assert await found("/") == ["back\\slash/and/slash"]
    assert await found("h/a") == ["back\\slash/and/slash"]
    assert await found("no such workflow") == []
    # Paging applies to the matches, in the same order.
    assert await found("done", limit=1) == ["1000 done"]
    assert await found("done", limit=1, offset=1) == ["100% done"]
    assert await found("done", limit=1, offset=2) == []
    # The current name is searched, not an older version's.
    updated = await store.update_workflow("wf-6", definition("renamed"), T0 + timedelta(hours=1))
    assert updated is not None
    assert await found("axxb") == []
    assert await found("RENAMED") == ["renamed"]


async def test_workflow_crud_and_versions(store: Store) -> None:
    first = Workflow(id="wf-a", definition=definition("one"), created_at=T0, updated_at=T0)
    later = T0 + timedelta(minutes=1)
    second = Workflow(id="wf-b", definition=definition("two"), created_at=later, updated_at=later)
    assert await store.create_workflow(first) == first
    await store.create_workflow(second)
    with pytest.raises(StoreError):
        await store.create_workflow(first)

    got = await store.get_workflow("wf-a")
    assert got is not None
    assert got.version == 1
    assert got.definition == first.definition
    assert await store.get_workflow("missing") is None
    assert [w.id for w in await store.list_workflows()] == ["wf-b", "wf-a"]
    assert [w.id for w in await store.list_workflows(limit=1, offset=1)] == ["wf-a"]

    edited = definition("one, edited", "start", "middle", "end")
    updated = await store.update_workflow("wf-a", edited, later)
    assert updated is not None
    assert (updated.version, updated.definition) == (2, edited)
    current = await store.get_workflow("wf-a")
    assert current is not None
    assert (current.version, current.definition.name) == (2, "one, edited")
    assert await store.update_workflow("missing", edited, later) is None

    # Every version is kept.
    assert isinstance(store, (SqlStore, MongoStore))
    v1 = await store.get_workflow_version("wf-a", 1)
    v2 = await store.get_workflow_version("wf-a", 2)
    assert v1 is not None and v2 is not None
    assert (v1.definition, v2.definition) == (first.definition, edited)
    assert await store.get_workflow_version("wf-a", 3) is None

    # Deleting a workflow keeps its runs.
    run = new_run("wf-a")
    await store.create_run(run)
    assert await store.delete_workflow("wf-a") is True
    assert await store.delete_workflow("wf-a") is False
    assert await store.get_workflow("wf-a") is None
    assert await store.get_workflow_version("wf-a", 1) is None
    kept = await store.get_run(run.execution_id)
    assert kept is not None
    assert kept.definition == run.definition
    assert [r.execution_id for r in await runs_of(store, "wf-a")] == [run.execution_id]


# Triggers --------------------------------------------------------------------------------


def hook(path: str) -> dict[str, Any]:
    return {"type": "webhook", "path": path, "auth": {"type": "none"}}


SCHEDULE = {"type": "schedule", "every_seconds": 60}


def triggered(name: str, *triggers: dict[str, Any], status: str = "active") -> WorkflowDefinition:
    return definition(name).model_copy(update={"triggers": list(triggers), "status": status})


async def save(store: Store, workflow_id: str, spec: WorkflowDefinition, second: int = 0) -> None:
    at = T0 + timedelta(seconds=second)
    await store.create_workflow(
        Workflow(id=workflow_id, definition=spec, created_at=at, updated_at=at)
    )


async def hook_holder(store: Store, path: str) -> str | None:
    found = await store.find_hook(path)
    return None if found is None else found.id


async def test_webhook_paths_are_unique_and_a_conflict_writes_nothing(store: Store) -> None:
    await save(store, "wf-a", triggered("a", hook("/new-signup/"), hook("github/push")))
    found = await store.find_hook("new-signup")
    assert found is not None and (found.id, found.version) == ("wf-a", 1)
    assert found.definition.triggers[0]["path"] == "/new-signup/"
    assert await hook_holder(store, "/github/push") == "wf-a"  # normalized as /hooks/ serves it
    assert await store.find_hook("unknown") is None

    # Claiming a taken path fails whole: the free paths before and after it stay free.
    clash = triggered("b", hook("a-free"), hook("new-signup"), hook("z-free"), SCHEDULE)
    with pytest.raises(TriggerConflict) as raised:
        await save(store, "wf-b", clash, 1)
    assert (raised.value.path, raised.value.workflow_id) == ("new-signup", "wf-a")
    assert await store.get_workflow("wf-b") is None
    assert [w.id for w in await store.list_workflows()] == ["wf-a"]
    assert await hook_holder(store, "a-free") is None
    assert await hook_holder(store, "z-free") is None
    assert await store.list_scheduled_workflows() == []

    await save(store, "wf-b", triggered("b", hook("b-path")), 1)
    with pytest.raises(TriggerConflict) as raised:
        await store.update_workflow("wf-b", clash, T0 + timedelta(seconds=2))
    assert (raised.value.path, raised.value.workflow_id) == ("new-signup", "wf-a")
    unchanged = await store.get_workflow("wf-b")
    assert unchanged is not None and (unchanged.version, unchanged.definition.name) == (1, "b")
    assert await hook_holder(store, "b-path") == "wf-b"
    assert await hook_holder(store, "a-free") is None
    assert await hook_holder(store, "z-free") is None
    assert await store.list_scheduled_workflows() == []
    assert isinstance(store, (SqlStore, MongoStore))
    assert await store.get_workflow_version("wf-b", 2) is None

    # Saving a workflow that keeps its own path is no conflict.
    kept = triggered("a, edited", hook("new-signup"), hook("github/push"))
    updated = await store.update_workflow("wf-a", kept, T0 + timedelta(seconds=3))
    assert updated is not None and updated.version == 2
    found = await store.find_hook("new-signup")
    assert found is not None and (found.id, found.version) == ("wf-a", 2)


async def test_a_path_moves_to_another_workflow_once_dropped(store: Store) -> None:
    await save(store, "wf-a", triggered("a", hook("shared"), hook("a-only")))
    await save(store, "wf-b", triggered("b", hook("b-only")), 1)
    with pytest.raises(TriggerConflict):
        await store.update_workflow("wf-b", triggered("b", hook("shared")), T0)
    assert await store.update_workflow("wf-a", triggered("a", hook("a-only")), T0)
    assert await hook_holder(store, "shared") is None
    assert await store.update_workflow("wf-b", triggered("b", hook("shared")), T0)
    assert await hook_holder(store, "shared") == "wf-b"
    assert await hook_holder(store, "b-only") is None  # dropped by that save
    assert await hook_holder(store, "a-only") == "wf-a"
    # Deleting a workflow frees its paths.
    assert await store.delete_workflow("wf-b")
    assert await hook_holder(store, "shared") is None
    await save(store, "wf-c", triggered("c", hook("shared")), 2)
    assert await hook_holder(store, "shared") == "wf-c"


async def test_scheduled_workflows_are_listed_paused_ones_too(store: Store) -> None:
    await save(store, "wf-plain", definition("plain"))
    await save(store, "wf-every", triggered("every", SCHEDULE, SCHEDULE), 1)
    await save(store, "wf-paused", triggered("paused", SCHEDULE, status="paused"), 2)
    await save(store, "wf-hook", triggered("hook", hook("h")), 3)
    await save(store, "wf-both", triggered("both", hook("both"), SCHEDULE), 4)

    async def scheduled() -> list[str]:
        return sorted(w.id for w in await store.list_scheduled_workflows())

    assert await scheduled() == ["wf-both", "wf-every", "wf-paused"]
    listed = {w.id: w for w in await store.list_scheduled_workflows()}
    assert listed["wf-paused"].definition.status == "paused"
    assert listed["wf-every"].definition.triggers == [SCHEDULE, SCHEDULE]
    assert await store.update_workflow("wf-every", definition("every"), T0)
    assert await store.update_workflow("wf-plain", triggered("plain", SCHEDULE), T0)
    assert await store.delete_workflow("wf-both")
    assert await scheduled() == ["wf-paused", "wf-plain"]


@pytest.mark.parametrize(
    ("prefix", "end"),
    [
        ("ab", "ac"),
        ("a%", "a&"),
        ("", None),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("x\ud7ff", "x\ue000"),
    ],
)
def test_prefix_end_is_the_least_string_past_the_prefix(prefix: str, end: str | None) -> None:
    assert prefix_end(prefix) == end


async def test_latest_idempotency_key_reads_a_literal_prefix(store: Store) -> None:
    keys = [
        "schedule:k%:2030-01-01T00:00:00Z",
        "schedule:k%:2030-01-01T00:01:00Z",
        "schedule:k%",  # the prefix itself is a key that starts with it
        "schedule:kX:2031-01-01T00:00:00Z",  # matched were % or _ a wildcard
        "schedule:k_:2029-01-01T00:00:00Z",
        "schedule:k:2032-01-01T00:00:00Z",
        "schedule:k;",  # the first string past "schedule:k:"
        "manual-key",
    ]
    for key in keys:
        await store.create_run(new_run("wf-1", key=key))
    await store.create_run(new_run("wf-1"))  # no key at all
    await store.create_run(new_run("wf-2", key="schedule:k%:2099-01-01T00:00:00Z"))

    async def latest(prefix: str, workflow_id: str = "wf-1") -> str | None:
        return await store.latest_idempotency_key(workflow_id, prefix)

    assert await latest("schedule:k%:") == "schedule:k%:2030-01-01T00:01:00Z"
    assert await latest("schedule:k%") == "schedule:k%:2030-01-01T00:01:00Z"
    assert await latest("schedule:k_:") == "schedule:k_:2029-01-01T00:00:00Z"
    assert await latest("schedule:k:") == "schedule:k:2032-01-01T00:00:00Z"
    assert await latest("schedule:k;") == "schedule:k;"
    # Code point order: "_" (5F) > "X" (58) > ";" (3B) > ":" (3A) > "%" (25).
    assert await latest("schedule:k") == "schedule:k_:2029-01-01T00:00:00Z"
    assert await latest("schedule:nope:") is None
    assert await latest("") == "schedule:k_:2029-01-01T00:00:00Z"
    assert await latest("schedule:k%:", "wf-2") == "schedule:k%:2099-01-01T00:00:00Z"
    assert await latest("schedule:k%:", "wf-unknown") is None


# Resuming a parked node ---------------------------------------------------------------------


def parked(wake_at: datetime | None = None, **meta: Any) -> NodeState:
    return NodeState(status=NodeStatus.WAITING, wake_at=wake_at, meta=meta)


async def waiting_run(store: Store, **states: NodeState) -> Run:
    run = new_run().model_copy(
        update={"definition": definition("flow", "start", *states, "later", "end")}
    )
    await store.create_run(run)
    await store.checkpoint(
        run.execution_id,
        Checkpoint(
            node_states={"start": NodeState(status=NodeStatus.COMPLETED), **states},
            run_fields={"status": RunStatus.WAITING, "wake_at": T0 + timedelta(days=1)},
        ),
    )
    return run


async def test_resume_node_outcomes(store: Store, store_kind: str) -> None:
    now = T0 + timedelta(minutes=1)
    run = await waiting_run(
        store,
        approve=parked(T0 + timedelta(hours=1), resumable=True, token="t1"),
        forever=parked(None, resumable=True),
        timed_out=parked(now, resumable=True),
        delay=parked(now + timedelta(hours=1)),
        used=parked(None, resumable=True, resumed=True, resume_payload={"old": 1}),
        # Keys MongoDB keeps only packed (see mongo.py): the meta is compared whole.
        odd=parked(None, resumable=True, **{"$set": {"a.b": 1}}),
    )
    eid = run.execution_id
    payload = {"approved": True, "note": "héllo", "$odd": {"a.b": [1, None]}}

    assert await store.resume_node(eid, "approve", payload, now) == "resumed"
    got = await store.get_run(eid)
    assert got is not None
    assert got.node_states["approve"].meta == {
        "resumable": True,
        "token": "t1",
        "resumed": True,
        "resume_payload": payload,
    }
    assert got.node_states["approve"].status == NodeStatus.WAITING
    assert got.wake_at == stored(store_kind, now)
    assert await store.find_runs_to_resume(now) == [eid]
    assert got.status == RunStatus.WAITING and got.last_seq == 0  # nothing else changed

    assert await store.resume_node(eid, "approve", {"again": True}, now) == "used"
    assert await store.resume_node(eid, "used", {}, now) == "used"
    assert await store.resume_node(eid, "forever", [1, "two"], now) == "resumed"
    assert await store.resume_node(eid, "odd", {"x.y": "z"}, now) == "resumed"
    assert await store.resume_node(eid, "odd", {}, now) == "used"
    assert await store.resume_node(eid, "timed_out", {}, now) == "not_waiting"
    assert await store.resume_node(eid, "delay", {}, now) == "not_waiting"
    assert await store.resume_node(eid, "start", {}, now) == "not_waiting"
    assert await store.resume_node(eid, "later", {}, now) == "not_waiting"  # not there yet
    assert await store.resume_node(eid, "ghost", {}, now) == "not_found"
    assert await store.resume_node("no-such-run", "approve", {}, now) == "not_found"
    after = await store.get_run(eid)
    assert after is not None
    assert after.node_states["approve"].meta["resume_payload"] == payload
    assert after.node_states["forever"].meta["resume_payload"] == [1, "two"]
    assert after.node_states["used"].meta["resume_payload"] == {"old": 1}
    assert after.node_states["odd"].meta == {
        "resumable": True,
        "$set": {"a.b": 1},
        "resumed": True,
        "resume_payload": {"x.y": "z"},
    }
    for untouched in ("timed_out", "delay"):
        assert "resumed" not in after.node_states[untouched].meta


async def test_resume_node_race_has_exactly_one_winner(store: Store) -> None:
    run = await waiting_run(store, approve=parked(None, resumable=True))
    outcomes = await asyncio.gather(
        *(store.resume_node(run.execution_id, "approve", {"click": i}, T0) for i in range(20))
    )
    assert sorted(outcomes) == ["resumed"] + ["used"] * 19
    winner = outcomes.index("resumed")
    got = await store.get_run(run.execution_id)
    assert got is not None
    assert got.node_states["approve"].meta["resume_payload"] == {"click": winner}


# Error workflows ----------------------------------------------------------------------------


async def test_error_workflow_pending_round_trips_and_is_queried(store: Store) -> None:
    async def add(second: int, **fields: Any) -> str:
        pending = fields.pop("pending", False)
        run = new_run(created_at=T0 + timedelta(seconds=second)).model_copy(
            update={"error_workflow_pending": pending}
        )
        return (await stored_run(store, run, **fields)).execution_id

    born_pending = await add(0, pending=True, status=RunStatus.ERROR)
    plain = await add(1)
    failed = await add(2, status=RunStatus.ERROR, error_workflow_pending=True)
    handled = await add(3, status=RunStatus.ERROR, error_workflow_pending=True)
    await store.checkpoint(handled, Checkpoint(run_fields={"error_workflow_pending": False}))

    async def ids(pending: bool | None) -> list[str]:
        runs = await store.find_runs(RunQuery(error_workflow_pending=pending))
        return [r.execution_id for r in runs]

    assert await ids(True) == [failed, born_pending]
    assert await ids(False) == [handled, plain]
    assert await ids(None) == [handled, failed, plain, born_pending]
    flags = {r.execution_id: r.error_workflow_pending for r in await store.find_runs()}
    assert flags == {born_pending: True, plain: False, failed: True, handled: False}
    got = await store.get_run(failed)
    assert got is not None and got.error_workflow_pending is True
    query = RunQuery(error_workflow_pending=True, status=RunStatus.ERROR)
    assert [r.execution_id for r in await store.find_runs(query, limit=1)] == [failed]


# Runs ----------------------------------------------------------------------------------


async def test_runs_create_get_list(store: Store, store_kind: str) -> None:
    runs = [new_run(created_at=T0 + timedelta(seconds=i)) for i in range(3)]
    for run in runs:
        assert (await store.create_run(run)).execution_id == run.execution_id
    await store.create_run(new_run("another-workflow"))
    with pytest.raises(StoreError):
        await store.create_run(runs[0])

    for i, run in enumerate(runs):
        await store.checkpoint(
            run.execution_id,
            Checkpoint(
                node_states={"start": NodeState(status=NodeStatus.COMPLETED, output=i)},
                events=[event(1, "start"), event(2, "start")],
            ),
        )

    got = await store.get_run(runs[0].execution_id)
    assert got is not None
    assert got.workflow_id == "wf-1"
    assert got.status is RunStatus.QUEUED
    assert got.definition == runs[0].definition
    assert got.variables == {"user": "Ada"}
    assert got.created_at == stored(store_kind, T0)
    assert got.node_states["start"].output == 0
    assert [e.seq for e in got.events] == [1, 2]
    assert got.last_seq == 2
    without = await store.get_run(runs[0].execution_id, with_events=False)
    assert without is not None
    assert without.events == []
    assert without.node_states == got.node_states
    assert await store.get_run("missing") is None

    listed = await runs_of(store, "wf-1")
    assert [r.execution_id for r in listed] == [r.execution_id for r in reversed(runs)]
    assert [r.node_states["start"].output for r in listed] == [2, 1, 0]
    assert all([e.seq for e in r.events] == [1, 2] for r in listed)
    page = await runs_of(store, "wf-1", limit=1, offset=1)
    assert [r.execution_id for r in page] == [runs[1].execution_id]
    assert await runs_of(store, "no-such-workflow") == []


async def test_duplicate_idempotency_key_raises_with_existing_run(store: Store) -> None:
    first = new_run(key="request-42")
    await store.create_run(first)
    with pytest.raises(DuplicateRun) as raised:
        await store.create_run(new_run(key="request-42"))
    assert raised.value.existing.execution_id == first.execution_id
    assert raised.value.existing.idempotency_key == "request-42"
    # Runs without a key never collide.
    await store.create_run(new_run())
    await store.create_run(new_run())
    assert len(await runs_of(store, "wf-1")) == 3


async def test_idempotency_keys_are_scoped_per_workflow(store: Store) -> None:
    first = await stored_run(store, new_run("wf-1", key="request-42"))
    # The same key on another workflow is another run, not the first workflow's.
    other = new_run("wf-2", key="request-42")
    assert (await store.create_run(other)).execution_id == other.execution_id
    for workflow_id, expected in (("wf-1", first), ("wf-2", other)):
        with pytest.raises(DuplicateRun) as raised:
            await store.create_run(new_run(workflow_id, key="request-42"))
        assert raised.value.existing.execution_id == expected.execution_id
        assert raised.value.existing.workflow_id == workflow_id
    assert [len(await runs_of(store, w)) for w in ("wf-1", "wf-2")] == [1, 1]


async def test_checkpoint_upserts_states_appends_events_sets_fields(
    store: Store, store_kind: str
) -> None:
    run = await stored_run(store, new_run())
    eid = run.execution_id
    await store.checkpoint(
        eid,
        Checkpoint(
            node_states={"start": NodeState(status=NodeStatus.RUNNING, started_at=T0)},
            events=[event(1, "start")],
            run_fields={"status": RunStatus.RUNNING, "start_time": T0},
        ),
    )
    finished = T0 + timedelta(seconds=1)
    await store.checkpoint(
        eid,
        Checkpoint(
            node_states={
                "start": NodeState(
                    status=NodeStatus.COMPLETED,
                    output={"text": "hello"},
                    started_at=T0,
                    finished_at=finished,
                    latency_ms=12.5,
                    attempts=2,
                    cached=True,
                    meta={"model": "m", "tokens": 7},
                ),
                "end": NodeState(status=NodeStatus.RUNNING, branch="true"),
            },
            events=[event(3, "end"), event(2, "start")],
            run_fields={"result": {"answer": 42}, "error": None},
        ),
    )
    got = await store.get_run(eid)
    assert got is not None
    assert got.status is RunStatus.RUNNING
    assert got.start_time == stored(store_kind, T0)
    assert got.result == {"answer": 42}
    start = got.node_states["start"]
    assert start.status is NodeStatus.COMPLETED
    assert start.output == {"text": "hello"}
    assert start.finished_at == stored(store_kind, finished)
    assert (start.latency_ms, start.attempts, start.cached) == (12.5, 2, True)
    assert start.meta == {"model": "m", "tokens": 7}
    assert got.node_states["end"].branch == "true"
    assert [(e.seq, e.node_id) for e in got.events] == [(1, "start"), (2, "start"), (3, "end")]
    assert got.last_seq == 3
    assert [e.seq for e in await store.list_events(eid, after_seq=1)] == [2, 3]
    assert await store.list_events("missing") == []

    # A later checkpoint with lower seqs never lowers last_seq.
    await store.checkpoint(eid, Checkpoint(events=[event(0)]))
    again = await store.get_run(eid, with_events=False)
    assert again is not None
    assert again.last_seq == 3

    # A retry may switch the run to the workflow's current definition.
    edited = definition("edited", "a", "b", "c")
    await store.checkpoint(
        eid, Checkpoint(run_fields={"definition": edited, "workflow_version": 2})
    )
    switched = await store.get_run(eid, with_events=False)
    assert switched is not None
    assert (switched.definition, switched.workflow_version) == (edited, 2)

    # Events are never rewritten; unknown runs and fields are refused.
    with pytest.raises(StoreError):
        await store.checkpoint(eid, Checkpoint(events=[event(2, data="rewritten")]))
    assert [e.data for e in await store.list_events(eid, after_seq=1)] == [{}, {}]
    with pytest.raises(StoreError):
        await store.checkpoint("missing", Checkpoint(run_fields={"status": RunStatus.ERROR}))
    with pytest.raises(StoreError):
        await store.checkpoint("missing", Checkpoint(events=[event(1)]))
    with pytest.raises(ValueError, match="lease_owner"):
        await store.checkpoint(eid, Checkpoint(run_fields={"lease_owner": "me"}))
    await store.checkpoint(eid, Checkpoint())  # nothing to do


async def test_concurrent_checkpoints_on_one_run_lose_nothing(store: Store) -> None:
    run = await stored_run(store, new_run())
    writers = 50

    async def write(i: int) -> None:
        await store.checkpoint(
            run.execution_id,
            Checkpoint(
                node_states={f"node-{i}": NodeState(status=NodeStatus.COMPLETED, output=i)},
                events=[event(i + 1, f"node-{i}", index=i)],
            ),
        )

    await asyncio.gather(*(write(i) for i in range(writers)))
    got = await store.get_run(run.execution_id)
    assert got is not None
    assert {k: s.output for k, s in got.node_states.items()} == {
        f"node-{i}": i for i in range(writers)
    }
    assert [e.seq for e in got.events] == list(range(1, writers + 1))
    assert [e.data["index"] for e in got.events] == list(range(writers))
    assert got.last_seq == writers


async def test_checkpoint_many_writes_several_runs_at_once(store: Store) -> None:
    runs = [await stored_run(store, new_run()) for _ in range(3)]
    await store.checkpoint_many(
        [
            (
                run.execution_id,
                Checkpoint(
                    node_states={"a": NodeState(status=NodeStatus.COMPLETED, output=index)},
                    events=[event(1, "a"), event(2, "a")],
                    run_fields={"status": RunStatus.RUNNING},
                ),
            )
            for index, run in enumerate(runs)
        ]
    )
    for index, run in enumerate(runs):
        got = await store.get_run(run.execution_id)
        assert got is not None
        assert got.node_states["a"].output == index
        assert [e.seq for e in got.events] == [1, 2] and got.last_seq == 2
        assert got.status is RunStatus.RUNNING
    with pytest.raises(StoreError):
        await store.checkpoint_many(
            [
                (runs[0].execution_id, Checkpoint(events=[event(3, "a")])),
                ("no-such-run", Checkpoint(events=[event(1, "a")])),
            ]
        )


async def test_fenced_checkpoints_need_the_lease(store: Store) -> None:
    run = await stored_run(store, new_run(), status=RunStatus.RUNNING)
    eid = run.execution_id
    assert await store.acquire_lease(eid, "holder", T0 + timedelta(seconds=10), T0)
    await store.checkpoint(
        eid, Checkpoint(node_states={"a": NodeState(status=NodeStatus.RUNNING)}), owner="holder"
    )
    for refused in (
        Checkpoint(node_states={"a": NodeState(status=NodeStatus.COMPLETED, output=1)}),
        Checkpoint(events=[event(1, "a")], run_fields={"status": RunStatus.SUCCESS}),
    ):
        with pytest.raises(LeaseLost):
            await store.checkpoint(eid, refused, owner="intruder")
    with pytest.raises(LeaseLost):
        await store.checkpoint_many([(eid, Checkpoint(events=[event(1)]))], owner="intruder")
    got = await store.get_run(eid)
    assert got is not None
    assert got.node_states["a"].status is NodeStatus.RUNNING
    assert got.events == [] and got.last_seq == 0 and got.status is RunStatus.RUNNING


async def test_a_failed_batch_applies_exactly_the_runs_it_reports(
    store: Store, store_kind: str
) -> None:
    """One run of a group commit is fenced out: the others are applied in full or not at all.

    SQL stores roll the whole batch back (LeaseLost); MongoDB applies the others
    and names exactly the failed run (PartialCheckpoint). Either way a per-run
    re-apply of what was not applied then works, and nothing is doubled.
    """
    runs = [await stored_run(store, new_run(label=f"batch-{i}")) for i in range(3)]
    ids = [run.execution_id for run in runs]
    far = T0 + timedelta(hours=1)
    for eid in ids:
        assert await store.acquire_lease(eid, "worker", far, T0)
    fenced_out = ids[1]
    await store.release_lease(fenced_out, "worker")
    assert await store.acquire_lease(fenced_out, "other-worker", far, T0)

    def checkpoint(index: int) -> Checkpoint:
        return Checkpoint(
            node_states={"a": NodeState(status=NodeStatus.COMPLETED, output=index)},
            events=[event(1, "a", index=index), event(2, "a", index=index)],
            run_fields={"status": RunStatus.RUNNING},
        )

    batch = [(eid, checkpoint(index)) for index, eid in enumerate(ids)]
    with pytest.raises(StoreError) as raised:
        await store.checkpoint_many(batch, owner="worker")

    async def applied(eid: str) -> bool:
        got = await store.get_run(eid)
        assert got is not None
        if got.last_seq == 0:
            assert got.node_states == {} and got.events == []
            assert got.status is RunStatus.QUEUED
            return False
        index = ids.index(eid)
        assert got.node_states["a"].output == index
        assert [(e.seq, e.data) for e in got.events] == [
            (1, {"index": index}),
            (2, {"index": index}),
        ]
        assert got.last_seq == 2 and got.status is RunStatus.RUNNING
        return True

    if store_kind.startswith("mongodb"):
        assert isinstance(raised.value, PartialCheckpoint)
        assert set(raised.value.failures) == {fenced_out}
        assert isinstance(raised.value.failures[fenced_out], LeaseLost)
        assert [await applied(eid) for eid in ids] == [True, False, True]
        not_applied = [fenced_out]
        # Applying an applied checkpoint again changes nothing (an executor that
        # retries every run of the batch must not fail the applied ones).
        await store.checkpoint(ids[0], checkpoint(0), owner="worker")
        assert await applied(ids[0])
    else:
        assert isinstance(raised.value, LeaseLost) and fenced_out in str(raised.value)
        assert [await applied(eid) for eid in ids] == [False, False, False]
        not_applied = ids
    # The executor's per-run retry: the fenced-out run stays refused, the rest go in.
    for eid in not_applied:
        if eid == fenced_out:
            with pytest.raises(LeaseLost):
                await store.checkpoint(eid, checkpoint(ids.index(eid)), owner="worker")
        else:
            await store.checkpoint(eid, checkpoint(ids.index(eid)), owner="worker")
    # Once the run is ours again, its checkpoint applies too.
    await store.release_lease(fenced_out, "other-worker")
    assert await store.acquire_lease(fenced_out, "worker", far, T0)
    await store.checkpoint(fenced_out, checkpoint(1), owner="worker")
    assert [await applied(eid) for eid in ids] == [True, True, True]


async def test_a_nul_character_round_trips_or_is_refused_with_nothing_written(
    store: Store, store_kind: str
) -> None:
    run = await stored_run(store, new_run())
    eid = run.execution_id
    await store.checkpoint(
        eid, Checkpoint(node_states={"a": NodeState(status=NodeStatus.RUNNING)}, events=[event(1)])
    )
    poisoned = {"text": "before\x00after", "list": ["\x00"], "key\x00": 1}
    nul = Checkpoint(
        node_states={"a": NodeState(status=NodeStatus.COMPLETED, output=poisoned)},
        events=[event(2, "a", output=poisoned)],
        run_fields={"status": RunStatus.SUCCESS, "result": poisoned},
    )
    if store_kind == "postgresql":
        # JSONB has no way to hold U+0000: refused, named, nothing written.
        with pytest.raises(UnstorableValue, match=r"node 'a' output.*NUL"):
            await store.checkpoint(eid, nul)
        other = await stored_run(store, new_run())
        with pytest.raises(UnstorableValue, match=eid):
            await store.checkpoint_many(
                [(other.execution_id, Checkpoint(events=[event(1)])), (eid, nul)]
            )
        got = await store.get_run(eid)
        assert got is not None
        assert got.node_states["a"].status is NodeStatus.RUNNING
        assert [e.seq for e in got.events] == [1] and got.last_seq == 1
        assert got.status is RunStatus.QUEUED and got.result is None
        untouched = await store.get_run(other.execution_id)
        assert untouched is not None and untouched.last_seq == 0
        with pytest.raises(UnstorableValue, match="variables"):
            await store.create_run(new_run().model_copy(update={"variables": poisoned}))
        return
    await store.checkpoint(eid, nul)
    got = await store.get_run(eid)
    assert got is not None
    assert got.node_states["a"].output == poisoned
    assert got.events[-1].data == {"output": poisoned}
    assert got.result == poisoned


async def test_redrives_count_takeovers_of_expired_leases(store: Store) -> None:
    run = await stored_run(store, new_run(), status=RunStatus.RUNNING)
    eid = run.execution_id
    assert run.redrives == 0 and run.dead_letter is False

    def at(seconds: int) -> datetime:
        return T0 + timedelta(seconds=seconds)

    first = await store.acquire_lease(eid, "a", at(10), at(0))
    assert first is not None and first.redrives == 0  # never held: not a re-drive
    again = await store.acquire_lease(eid, "a", at(20), at(5))
    assert again is not None and again.redrives == 0  # our own lease
    assert await store.acquire_lease(eid, "b", at(40), at(15)) is None  # a's is live
    taken = await store.acquire_lease(eid, "b", at(40), at(25))  # a's expired at 20
    assert taken is not None and taken.redrives == 1
    await store.release_lease(eid, "b")
    released = await store.acquire_lease(eid, "c", at(60), at(30))
    assert released is not None and released.redrives == 1  # given up, not abandoned
    taken_again = await store.acquire_lease(eid, "a", at(90), at(61))
    assert taken_again is not None and taken_again.redrives == 2
    for got in (await store.get_run(eid), (await runs_of(store, "wf-1"))[0]):
        assert got is not None and got.redrives == 2
    # A checkpoint may set both fields (the engine's re-drive budget).
    await store.checkpoint(eid, Checkpoint(run_fields={"redrives": 0, "dead_letter": True}))
    reset = await store.get_run(eid, with_events=False)
    assert reset is not None and (reset.redrives, reset.dead_letter) == (0, True)


async def test_dead_letter_runs_are_listed_newest_first_without_events(store: Store) -> None:
    dead = []
    for i in range(3):
        run = await stored_run(store, new_run(created_at=T0 + timedelta(seconds=i)))
        await store.checkpoint(
            run.execution_id,
            Checkpoint(
                node_states={"a": NodeState(status=NodeStatus.FAILED, error="boom")},
                events=[event(1, "a")],
                run_fields={"status": RunStatus.ERROR, "dead_letter": True},
            ),
        )
        dead.append(run.execution_id)
    await stored_run(store, new_run(created_at=T0 + timedelta(seconds=9)), status="error")
    listed = await store.find_runs(RunQuery(dead_letter=True))
    assert [r.execution_id for r in listed] == dead[::-1]
    assert all(r.dead_letter and r.events == [] for r in listed)
    assert all(r.node_states["a"].error == "boom" and r.last_seq == 1 for r in listed)
    page = await store.find_runs(RunQuery(dead_letter=True), limit=1, offset=1)
    assert [r.execution_id for r in page] == [dead[1]]


async def test_a_run_keeps_its_trigger(store: Store) -> None:
    manual = await stored_run(store, new_run(trigger={"type": "manual"}))
    hook = {"type": "webhook", "path": "/hooks/a.b", "$odd": ["kept"]}
    webhook = await stored_run(store, new_run(trigger=hook))
    untriggered = await stored_run(store, new_run())
    assert (manual.trigger, webhook.trigger, untriggered.trigger) == (
        {"type": "manual"},
        hook,
        None,
    )
    # A checkpoint that changes the run (as a retry does) leaves the trigger alone.
    await store.checkpoint(
        manual.execution_id, Checkpoint(run_fields={"status": RunStatus.QUEUED, "error": None})
    )
    got = await store.get_run(manual.execution_id, with_events=False)
    assert got is not None and got.trigger == {"type": "manual"}
    listed = {r.execution_id: r.trigger for r in await store.find_runs()}
    assert listed == {r.execution_id: r.trigger for r in (manual, webhook, untriggered)}
    found = await store.find_runs(RunQuery(trigger_type="webhook"))
    assert [r.execution_id for r in found] == [webhook.execution_id]


async def test_find_runs_filters_and_pages_newest_first(store: Store) -> None:
    async def add(workflow_id: str, second: int, **fields: Any) -> str:
        trigger = fields.pop("trigger", {"type": "manual"})
        run = new_run(workflow_id, created_at=T0 + timedelta(seconds=second), trigger=trigger)
        return (await stored_run(store, run, **fields)).execution_id

    a_ok = await add("wf-a", 0, status=RunStatus.SUCCESS)
    b_err = await add("wf-b", 1, status=RunStatus.ERROR)
    a_dead = await add("wf-a", 2, status=RunStatus.ERROR, dead_letter=True)
    b_hook = await add("wf-b", 3, trigger={"type": "webhook"})
    a_old = await add("wf-a", 4, trigger=None)
    # Same instant: the execution id decides, descending.
    t1, t2 = sorted([await add("wf-c", 5), await add("wf-c", 5)])

    async def ids(query: RunQuery = RunQuery(), **page: int) -> list[str]:
        runs = await store.find_runs(query, **page)
        assert all(r.events == [] for r in runs)
        return [r.execution_id for r in runs]

    assert await ids() == [t2, t1, a_old, b_hook, a_dead, b_err, a_ok]
    assert await ids(limit=2, offset=1) == [t1, a_old]
    assert await ids(offset=7) == []
    assert await ids(RunQuery(workflow_id="wf-a")) == [a_old, a_dead, a_ok]
    assert await ids(RunQuery(status=RunStatus.ERROR)) == [a_dead, b_err]
    assert await ids(RunQuery(status=RunStatus.QUEUED)) == [t2, t1, a_old, b_hook]
    assert await ids(RunQuery(dead_letter=True)) == [a_dead]
    assert await ids(RunQuery(status=RunStatus.ERROR, dead_letter=False)) == [b_err]
    assert await ids(RunQuery(trigger_type="webhook")) == [b_hook]
    assert await ids(RunQuery(trigger_type="manual", workflow_id="wf-a")) == [a_dead, a_ok]
    assert await ids(RunQuery(trigger_type="schedule")) == []
    assert await ids(RunQuery(workflow_id="wf-b", status=RunStatus.SUCCESS)) == []
    with_events = await store.find_runs(RunQuery(workflow_id="wf-c"), with_events=True)
    assert [r.execution_id for r in with_events] == [t2, t1]


async def test_latest_runs_gives_the_newest_run_of_each_stored_workflow(
    store: Store, store_kind: str
) -> None:
    for workflow_id in ("wf-a", "wf-b", "wf-never-ran"):
        await store.create_workflow(
            Workflow(id=workflow_id, definition=definition(), created_at=T0, updated_at=T0)
        )
    for second in (0, 2, 1):
        await stored_run(store, new_run("wf-a", created_at=T0 + timedelta(seconds=second)))
    newest_a = (await store.find_runs(RunQuery(workflow_id="wf-a"), limit=1))[0]
    finished = T0 + timedelta(seconds=9)
    b_runs = [new_run("wf-b", created_at=T0 + timedelta(seconds=5)) for _ in range(2)]
    for run in b_runs:  # a tie: the same order as find_runs, the larger execution id
        await stored_run(store, run, status=RunStatus.SUCCESS, start_time=T0, end_time=finished)
    newest_b = max(r.execution_id for r in b_runs)
    await stored_run(store, new_run("wf-deleted-or-unknown"))

    latest = await store.latest_runs(["wf-a", "wf-b", "wf-never-ran", "wf-deleted-or-unknown"])
    assert set(latest) == {"wf-a", "wf-b"}
    assert latest["wf-a"].execution_id == newest_a.execution_id
    assert latest["wf-a"].created_at == stored(store_kind, T0 + timedelta(seconds=2))
    assert (latest["wf-a"].status, latest["wf-a"].start_time) == (RunStatus.QUEUED, None)
    b = latest["wf-b"]
    assert (b.execution_id, b.status) == (newest_b, RunStatus.SUCCESS)
    assert (b.start_time, b.end_time) == (stored(store_kind, T0), stored(store_kind, finished))
    assert await store.latest_runs(["wf-b"]) == {"wf-b": b}
    assert await store.latest_runs([]) == {}


async def test_json_and_odd_node_ids_round_trip(store: Store) -> None:
    output = {
        "text": "héllo wörld ✓ 日本語 🚀",
        "nested": {"list": [1, 2.5, None, True, {"deep": ["x", {"deeper": None}]}]},
        "none": None,
        "empty": {},
        "dotted.key": {"$ref": "#/definitions/x", "a.b": [{"$c.d": 1}]},
        "big": 2**62,
    }
    odd_ids = ["plain", "a.b.c", "$dollar", "50%", "%2E", "ünï cödé"]
    run = new_run()
    run.variables = {"user.name": "Ada", "$weird": [None, "é"]}
    await store.create_run(run)
    await store.checkpoint(
        run.execution_id,
        Checkpoint(
            node_states={
                node_id: NodeState(status=NodeStatus.COMPLETED, output=output, meta={"$m": 1})
                for node_id in odd_ids
            }
            | {"none": NodeState(status=NodeStatus.COMPLETED, output=None)},
            events=[event(1, "a.b.c", payload=output)],
            run_fields={"result": [output, "tail", None]},
        ),
    )
    got = await store.get_run(run.execution_id)
    assert got is not None
    assert set(got.node_states) == {*odd_ids, "none"}
    assert all(got.node_states[node_id].output == output for node_id in odd_ids)
    assert got.node_states["$dollar"].meta == {"$m": 1}
    assert got.node_states["none"].output is None
    assert got.events[0].data == {"payload": output}
    assert got.events[0].node_id == "a.b.c"
    assert got.result == [output, "tail", None]
    assert got.variables == {"user.name": "Ada", "$weird": [None, "é"]}
    # Non-JSON values inside an output are stored as JSON would have them.
    await store.checkpoint(
        run.execution_id,
        Checkpoint(node_states={"plain": NodeState(output={"when": T0, 1: ("a", "b")})}),
    )
    plain = await store.get_run(run.execution_id, with_events=False)
    assert plain is not None
    assert plain.node_states["plain"].output == {"when": T0.isoformat(), "1": ["a", "b"]}


async def test_datetimes_come_back_aware_and_equal(store: Store, store_kind: str) -> None:
    plus_two = timezone(timedelta(hours=2))
    created = datetime(2030, 6, 1, 12, 30, 45, 123456, tzinfo=plus_two)
    wake = T0 + timedelta(days=3)
    run = new_run(created_at=created)
    await store.create_run(run)
    await store.checkpoint(
        run.execution_id,
        Checkpoint(
            node_states={"start": NodeState(started_at=created, wake_at=wake)},
            events=[Event(seq=1, type="run_started", timestamp=created)],
            run_fields={"start_time": created, "wake_at": wake, "status": RunStatus.WAITING},
        ),
    )
    got = await store.get_run(run.execution_id)
    assert got is not None
    values = [
        got.created_at,
        got.start_time,
        got.wake_at,
        got.node_states["start"].started_at,
        got.node_states["start"].wake_at,
        got.events[0].timestamp,
    ]
    expected = [created, created, wake, created, wake, created]
    for value, want in zip(values, expected, strict=True):
        assert value is not None
        assert value.utcoffset() == timedelta(0)
        assert value == stored(store_kind, want)


# Run control across processes ----------------------------------------------------------


async def test_lease_race_has_exactly_one_winner(store: Store) -> None:
    run = await stored_run(store, new_run())
    owners = [f"worker-{i}" for i in range(8)]
    expires = T0 + timedelta(seconds=15)
    results = await asyncio.gather(
        *(store.acquire_lease(run.execution_id, owner, expires, T0) for owner in owners)
    )
    winners = [(owner, got) for owner, got in zip(owners, results, strict=True) if got]
    assert len(winners) == 1
    owner, leased = winners[0]
    assert leased.lease_owner == owner
    assert leased.execution_id == run.execution_id
    # Taking it again as the holder works (a redelivered job on the same worker).
    assert await store.acquire_lease(run.execution_id, owner, expires, T0) is not None


async def test_expired_lease_is_taken_over_and_the_old_holder_loses_it(store: Store) -> None:
    run = await stored_run(store, new_run(), status=RunStatus.RUNNING)
    eid = run.execution_id
    await store.checkpoint(eid, Checkpoint(events=[event(1)]))
    leased = await store.acquire_lease(eid, "a", T0 + timedelta(seconds=10), T0)
    assert leased is not None
    # No events (the worker needs only last_seq to number the next ones).
    assert leased.events == [] and leased.last_seq == 1
    assert await store.renew_lease(eid, "a", T0 + timedelta(seconds=20)) is True
    # Before expiry nobody else gets it.
    assert await store.acquire_lease(eid, "b", T0 + timedelta(seconds=30), T0) is None
    later = T0 + timedelta(seconds=21)
    taken = await store.acquire_lease(eid, "b", later + timedelta(seconds=10), later)
    assert taken is not None
    assert taken.lease_owner == "b"
    assert await store.renew_lease(eid, "a", later + timedelta(seconds=60)) is False
    await store.release_lease(eid, "a")  # not a's any more: no effect
    still = await store.get_run(eid)
    assert still is not None
    assert still.lease_owner == "b"
    await store.release_lease(eid, "b")
    free = await store.get_run(eid)
    assert free is not None
    assert (free.lease_owner, free.lease_expires_at) == (None, None)
    assert await store.renew_lease(eid, "b", later) is False
    assert await store.acquire_lease(eid, "a", later + timedelta(seconds=5), later) is not None
    # Finished and unknown runs cannot be leased.
    await store.release_lease(eid, "a")
    await store.checkpoint(eid, Checkpoint(run_fields={"status": RunStatus.SUCCESS}))
    assert await store.acquire_lease(eid, "a", later + timedelta(seconds=5), later) is None
    assert await store.acquire_lease("missing", "a", later, later) is None


# The SQL store reads the node states after taking the lease (two statements on PostgreSQL).
@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
async def test_a_lease_whose_read_failed_is_given_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ductwork.store import sql as sql_module

    run = await stored_run(store, new_run())
    # The node-states read after the lease UPDATE fails (on PostgreSQL the UPDATE has
    # committed by then): the caller sees the error and the lease is free again.
    monkeypatch.setattr(
        sql_module,
        "_SELECT_STATES",
        select(Column("x")).select_from(Table("no_such_table", MetaData(), Column("x", Integer))),
    )
    far = datetime.now(UTC) + timedelta(hours=1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await store.acquire_lease(run.execution_id, "w", far, datetime.now(UTC))
    monkeypatch.undo()
    got = await store.get_run(run.execution_id)
    assert got is not None and got.lease_owner is None


async def test_a_run_created_leased_is_held_by_its_creator_until_the_lease_expires(
    store: Store, store_kind: str
) -> None:
    # `Executor.lease_new_run`: the process that will drive a run at once inserts it
    # leased. Should it die before driving it, the run is taken over on expiry.
    expires = T0 + timedelta(seconds=15)
    run = new_run().model_copy(update={"lease_owner": "creator", "lease_expires_at": expires})
    eid = run.execution_id
    await store.create_run(run)
    got = await store.get_run(eid)
    assert got is not None and got.status is RunStatus.QUEUED
    assert (got.lease_owner, got.lease_expires_at) == ("creator", stored(store_kind, expires))
    # The creator writes without taking the lease first (as its executor then does).
    await store.checkpoint(eid, Checkpoint(events=[event(1)]), owner="creator")
    assert await store.renew_lease(eid, "creator", expires) is True
    # Nobody else takes it, writes to it or is offered it while the lease lasts; a cancel
    # only sets the flag (the holder ends it).
    before = expires - timedelta(seconds=1)
    assert await store.acquire_lease(eid, "other", before + timedelta(seconds=15), before) is None
    with pytest.raises(LeaseLost):
        await store.checkpoint(eid, Checkpoint(events=[event(2)]), owner="other")
    assert eid not in await store.find_runs_to_resume(before)
    held = await store.request_cancel(eid)
    assert held is not None and held.status is RunStatus.QUEUED and held.cancel_requested
    # Once it expires, the sweep offers it and the next worker takes it over (a re-drive).
    after = expires + timedelta(seconds=1)
    assert eid in await store.find_runs_to_resume(after)
    taken = await store.acquire_lease(eid, "other", after + timedelta(seconds=15), after)
    assert taken is not None
    assert (taken.lease_owner, taken.redrives, taken.last_seq) == ("other", 1, 1)
    assert taken.cancel_requested is True
    with pytest.raises(LeaseLost):
        await store.checkpoint(eid, Checkpoint(events=[event(2)]), owner="creator")
    await store.checkpoint(eid, Checkpoint(events=[event(2)]), owner="other")
    final = await store.get_run(eid)
    assert final is not None and [e.seq for e in final.events] == [1, 2]


async def test_cancelling_a_queued_run_finishes_it_at_once(store: Store) -> None:
    run = await stored_run(store, new_run())
    await store.checkpoint(run.execution_id, Checkpoint(events=[event(1), event(2)]))
    assert await store.is_cancel_requested(run.execution_id) is False
    cancelled = await store.request_cancel(run.execution_id)
    assert cancelled is not None
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.cancel_requested is True
    assert cancelled.end_time is not None
    assert cancelled.last_seq == 3
    last = cancelled.events[-1]
    assert (last.seq, last.type, last.data) == (3, "run_finished", {"status": "cancelled"})
    assert await store.is_cancel_requested(run.execution_id) is True
    # Asking again changes nothing.
    again = await store.request_cancel(run.execution_id)
    assert again is not None
    assert [e.seq for e in again.events] == [1, 2, 3]
    assert await store.request_cancel("missing") is None
    assert await store.is_cancel_requested("missing") is False


async def test_cancelling_a_held_run_only_sets_the_flag(store: Store) -> None:
    running = await stored_run(store, new_run(), status=RunStatus.RUNNING)
    queued = await stored_run(store, new_run())
    far = datetime.now(UTC) + timedelta(hours=1)
    for run in (running, queued):
        assert await store.acquire_lease(run.execution_id, "w", far, datetime.now(UTC))
        got = await store.request_cancel(run.execution_id)
        assert got is not None
        assert got.status is run.status
        assert got.cancel_requested is True
        assert got.end_time is None
        assert got.events == []
        assert await store.is_cancel_requested(run.execution_id) is True


async def test_cancelling_a_parked_run_makes_it_due_for_the_sweep(store: Store) -> None:
    # The queue message `cancel` sends may be lost (the Redis queue reads NOACK): the
    # sweep must find the parked run, not only when its wake-up (here days away) comes.
    days = datetime.now(UTC) + timedelta(days=7)
    parked = await stored_run(store, new_run(), status=RunStatus.WAITING, wake_at=days)
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert parked.execution_id not in await store.find_runs_to_resume(now)
    got = await store.request_cancel(parked.execution_id)
    assert got is not None and got.status is RunStatus.WAITING and got.cancel_requested
    assert parked.execution_id in await store.find_runs_to_resume(now)


async def test_find_runs_to_resume(store: Store) -> None:
    now = T0 + timedelta(hours=1)
    old, fresh = now - timedelta(minutes=5), now - timedelta(seconds=1)
    past, future = now - timedelta(seconds=1), now + timedelta(minutes=1)

    async def make(label: str, created: datetime = old, **fields: Any) -> str:
        run = await stored_run(store, new_run(created_at=created, label=label), **fields)
        return run.execution_id

    async def lease(execution_id: str, expires: datetime) -> None:
        assert await store.acquire_lease(execution_id, "dead-worker", expires, old)

    running_expired = await make("running-expired", old - timedelta(minutes=3), status="running")
    await lease(running_expired, past)
    queued_expired = await make("queued-expired", old - timedelta(minutes=2))
    await lease(queued_expired, past)
    running_unleased = await make("running-unleased", old - timedelta(minutes=1), status="running")
    waiting_due = await make("waiting-due", status="waiting", wake_at=past)
    queued_orphan = await make("queued-orphan", old + timedelta(seconds=1))

    running_live = await make("running-live", status="running")
    await lease(running_live, future)
    await make("waiting-later", status="waiting", wake_at=future)
    waiting_held = await make("waiting-held", status="waiting", wake_at=past)
    await lease(waiting_held, future)
    await make("queued-fresh", fresh)
    finished = await make("finished", status="running")
    await lease(finished, past)
    await store.checkpoint(finished, Checkpoint(run_fields={"status": RunStatus.SUCCESS}))

    due = [running_expired, queued_expired, running_unleased, waiting_due, queued_orphan]
    assert await store.find_runs_to_resume(now) == due
    assert await store.find_runs_to_resume(now, limit=2) == due[:2]
    # Two seconds later the fresh queued run counts as lost too.
    assert len(await store.find_runs_to_resume(now + timedelta(seconds=2))) == len(due) + 1


# Choosing and migrating stores -----------------------------------------------------------


def test_create_store_by_scheme(tmp_path: Any) -> None:
    assert isinstance(create_store(f"sqlite:///{tmp_path}/x.db"), SqlStore)
    for url in (
        "postgresql://u@h/db",
        "postgres://u@h/db",
        "postgresql+asyncpg://u@h/db",
    ):
        store = create_store(url)
        assert isinstance(store, SqlStore)
        assert store.dialect == "postgresql"
    assert isinstance(create_store("mongodb://h/db"), MongoStore)
    assert isinstance(create_store("mongodb+srv://cluster.example.com/db"), MongoStore)
    with pytest.raises(ValueError, match="unknown store URL scheme 'redis'"):
        create_store("redis://localhost")
    with pytest.raises(ValueError, match="not a store URL"):
        create_store("just-a-path.db")
    with pytest.raises(ValueError, match="asyncpg"):
        SqlStore("postgresql+psycopg://u@h/db")


async def test_sql_schema_is_created_then_upgraded_in_order(
    store_url_factory: Callable[[str], str],
) -> None:
    url = store_url_factory("sqlite")
    store = SqlStore(url)
    await store.start()
    await store.close()
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            assert connection.execute(select(schema_version.c.version)).scalar() == SCHEMA_VERSION
            tables = set(inspect(connection).get_table_names())
            assert {"workflows", "workflow_versions", "workflow_runs", "node_states"} <= tables

        applied: list[int] = []
        extra = Table("extra", MetaData(), Column("id", Integer, primary_key=True))

        def add_extra(connection: Any) -> None:
            applied.append(1)
            extra.create(connection)

        def second(connection: Any) -> None:
            applied.append(2)

        upgrades = [*UPGRADES, add_extra, second]
        with engine.begin() as connection:
            assert migrate(connection, upgrades) == SCHEMA_VERSION + 2
        with engine.begin() as connection:
            assert migrate(connection, upgrades) == SCHEMA_VERSION + 2  # already there
            assert "extra" in inspect(connection).get_table_names()
        assert applied == [1, 2]
        # This code knows fewer versions than the database has: refuse, change nothing.
        with pytest.raises(StoreError, match="newer"), engine.begin() as connection:
            migrate(connection, UPGRADES)
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sql_schema_1_is_upgraded_keeping_its_runs(
    kind: str, store_url_factory: Callable[[str], str]
) -> None:
    """Version 1 had a global unique idempotency key and no redrives/dead_letter columns."""
    url = store_url_factory(kind)
    if kind == "sqlite":
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_v1_database(kind, url)
    store = SqlStore(url)
    await store.start()
    try:
        old = await store.get_run(V1_RUN_ID)
        assert old is not None
        assert (old.redrives, old.dead_letter, old.idempotency_key) == (
            0,
            False,
            V1_IDEMPOTENCY_KEY,
        )
        assert old.node_states["start"].output == {"kept": True}
        assert [e.seq for e in old.events] == [1, 2] and old.last_seq == 2
        # The key is now scoped per workflow, and still unique within it.
        await store.create_run(new_run("another-workflow", key=V1_IDEMPOTENCY_KEY))
        with pytest.raises(DuplicateRun) as raised:
            await store.create_run(new_run(V1_WORKFLOW_ID, key=V1_IDEMPOTENCY_KEY))
        assert raised.value.existing.execution_id == V1_RUN_ID
        await store.checkpoint(V1_RUN_ID, Checkpoint(run_fields={"dead_letter": True}))
        assert [r.execution_id for r in await store.find_runs(RunQuery(dead_letter=True))] == [
            V1_RUN_ID
        ]
    finally:
        await store.close()
    # The upgraded schema is the one a new database gets.
    fresh_url = store_url_factory(kind)
    fresh = SqlStore(fresh_url)
    await fresh.start()
    await fresh.close()
    assert await _schema_of(url) == await _schema_of(fresh_url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sql_schema_3_is_upgraded_to_record_triggers(
    kind: str, store_url_factory: Callable[[str], str]
) -> None:
    """A database at version 3 (runs without `trigger`) opens, upgrades and keeps its runs."""
    url = store_url_factory(kind)
    if kind == "sqlite":
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_v1_database(kind, url)
    # Upgrades 2 and 3 are frozen, so this is exactly what a version 3 ductwork left.
    await _migrate_with(url, UPGRADES[:2])
    assert await _version_of(url) == 3
    assert "trigger" not in [c[0] for c in (await _schema_of(url))["workflow_runs"][0]]

    store = SqlStore(url)
    await store.start()
    try:
        old = await store.get_run(V1_RUN_ID)
        assert old is not None and old.trigger is None
        assert old.node_states["start"].output == {"kept": True}
        new = await stored_run(store, new_run(V1_WORKFLOW_ID, trigger={"type": "manual"}))
        assert new.trigger == {"type": "manual"}
        manual = await store.find_runs(RunQuery(trigger_type="manual"))
        assert [r.execution_id for r in manual] == [new.execution_id]
        assert [r.execution_id for r in await store.find_runs()] == [new.execution_id, V1_RUN_ID]
    finally:
        await store.close()
    assert await _version_of(url) == SCHEMA_VERSION
    fresh_url = store_url_factory(kind)
    fresh = SqlStore(fresh_url)
    await fresh.start()
    await fresh.close()
    assert await _schema_of(url) == await _schema_of(fresh_url)


@pytest.fixture
def icu_postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A new PostgreSQL database whose default collation is ICU's en-US.

    There `;` sorts before `:` and `_` before `%`: a prefix range of idempotency
    keys only works because the column compares by code point (COLLATE "C").
    """
    name = unique_name("ductwork_icu")
    try:
        postgres_execute(
            postgres_admin_url,
            f"CREATE DATABASE \"{name}\" LOCALE_PROVIDER icu ICU_LOCALE 'en-US' TEMPLATE template0",
        )
    except asyncpg.PostgresError as exc:
        service_unavailable(f"PostgreSQL cannot create an ICU database: {exc}")
    try:
        yield make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        postgres_execute(postgres_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "postgresql-icu"])
async def test_sql_schema_4_is_upgraded_to_index_triggers(
    kind: str, store_url_factory: Callable[[str], str], request: pytest.FixtureRequest
) -> None:
    """Version 4 kept triggers in definitions only: the upgrade indexes them, oldest first."""
    if kind == "postgresql-icu":
        url: str = request.getfixturevalue("icu_postgres_url")
        kind = "postgresql"
    else:
        url = store_url_factory(kind)
    if kind == "sqlite":
        Path(make_url(url).database or "").parent.mkdir(parents=True, exist_ok=True)
    create_v1_database(kind, url)
    await _migrate_with(url, UPGRADES[:3])  # frozen, so exactly what version 4 left
    assert await _version_of(url) == 4

    def saved(workflow_id: str, second: int, spec: dict[str, Any]) -> dict[str, Any]:
        at = T0 + timedelta(seconds=second)
        return {
            "id": workflow_id,
            "name": str(spec.get("name", "?")),
            "version": 1,
            "definition": spec,
            "status": "active",
            "created_at": at,
            "updated_at": at,
        }

    rows = [
        saved("wf-new", 2, triggered("new", hook("/shared"), hook("own")).dump()),
        saved("wf-old", 1, triggered("old", hook("shared/"), SCHEDULE).dump()),
        saved("wf-plain", 0, definition("plain").dump()),
        # No longer a valid definition: skipped, it cannot be loaded anyway.
        saved("wf-broken", 3, {"name": "broken", "nodes": "?", "triggers": [hook("broken")]}),
    ]
    await _on_connection(url, lambda connection: connection.execute(insert(workflows), rows))

    store = SqlStore(url)
    await store.start()
    try:
        assert await hook_holder(store, "shared") == "wf-old"  # the first saved keeps it
        assert await hook_holder(store, "own") == "wf-new"
        assert await hook_holder(store, "broken") is None
        assert [w.id for w in await store.list_scheduled_workflows()] == ["wf-old"]
        with pytest.raises(TriggerConflict):
            await store.update_workflow("wf-new", triggered("new", hook("shared")), T0)
        old_run = await store.get_run(V1_RUN_ID)
        assert old_run is not None and old_run.error_workflow_pending is False
        await store.checkpoint(V1_RUN_ID, Checkpoint(run_fields={"error_workflow_pending": True}))
        pending = await store.find_runs(RunQuery(error_workflow_pending=True))
        assert [r.execution_id for r in pending] == [V1_RUN_ID]
        for key in ("schedule:a:1", "schedule:a:2", "schedule:a;", "schedule:a_", "schedule:a%"):
            await store.create_run(new_run("wf-keys", key=key))
        assert await store.latest_idempotency_key("wf-keys", "schedule:a:") == "schedule:a:2"
        assert await store.latest_idempotency_key("wf-keys", "schedule:a%") == "schedule:a%"
    finally:
        await store.close()
    assert await _version_of(url) == SCHEMA_VERSION
    fresh_url = store_url_factory(kind)
    fresh = SqlStore(fresh_url)
    await fresh.start()
    await fresh.close()
    assert await _schema_of(url) == await _schema_of(fresh_url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_sql_flag_queries_read_their_partial_indexes(
    kind: str, store_url_factory: Callable[[str], str]
) -> None:
    """The sweep lists pending error workflows every second: an index, not a scan of all runs."""
    url = store_url_factory(kind)
    store = SqlStore(url)
    await store.start()
    await store.close()

    def plan(connection: Any, query: RunQuery) -> str:
        statement = find_runs_statement(query).params(limit=100, offset=0)
        sql = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
        if connection.dialect.name == "sqlite":
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            return " ".join(str(row[-1]) for row in rows)
        # An empty table is cheapest to scan; what matters is that the index can serve.
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        return " ".join(str(row[0]) for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))

    for query, index in (
        (RunQuery(error_workflow_pending=True), "ix_workflow_runs_error_workflow_pending"),
        (RunQuery(dead_letter=True), "ix_workflow_runs_dead_letter"),
    ):
        assert index in await _on_connection(url, lambda c, q=query: plan(c, q))


async def _on_connection(url: str, work: Callable[[Any], Any]) -> Any:
    """`work(connection)` in one transaction on a plain engine (no store)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        try:
            with engine.begin() as connection:
                return work(connection)
        finally:
            engine.dispose()
    async_engine = create_async_engine(parsed.set(drivername="postgresql+asyncpg"))
    try:
        async with async_engine.begin() as async_connection:
            return await async_connection.run_sync(work)
    finally:
        await async_engine.dispose()


async def _migrate_with(url: str, upgrades: list[Any]) -> None:
    await _on_connection(url, lambda connection: migrate(connection, upgrades))


async def _version_of(url: str) -> int:
    version: int = await _on_connection(
        url, lambda connection: connection.execute(select(schema_version.c.version)).scalar()
    )
    return version


async def _schema_of(url: str) -> dict[str, Any]:
    """Columns, indexes and unique constraints of every table, as the database reports them."""

    def describe(connection: Any) -> dict[str, Any]:
        inspector = inspect(connection)
        return {
            table: (
                [
                    (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                    for c in inspector.get_columns(table)
                ],
                sorted(
                    (i["name"] or "", tuple(i["column_names"]), bool(i["unique"]))
                    for i in inspector.get_indexes(table)
                ),
                sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)),
            )
            for table in sorted(inspector.get_table_names())
        }

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed)
        try:
            with engine.connect() as connection:
                return describe(connection)
        finally:
            engine.dispose()
    async_engine = create_async_engine(parsed.set(drivername="postgresql+asyncpg"))
    try:
        async with async_engine.connect() as async_connection:
            return await async_connection.run_sync(describe)
    finally:
        await async_engine.dispose()


# MongoDB's own layout -----------------------------------------------------------------------


MONGO_KINDS = ("mongodb", "mongodb-real")


@pytest.fixture
def mongo_url(store_kind: str, store_url_factory: Callable[[str], str]) -> str:
    return store_url_factory(store_kind)


@pytest.fixture
async def mongo(mongo_url: str) -> AsyncIterator[MongoStore]:
    store = MongoStore(mongo_url)
    await store.start()
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def raw(mongo_url: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """The store's database through a client of its own, to look at the documents."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        yield client.get_default_database()
    finally:
        await client.close()


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_workflows_keep_the_seeds_shape(
    mongo: MongoStore, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    wf = Workflow(
        id="wf-seed", definition=definition("seed", "a", "b"), created_at=T0, updated_at=T0
    )
    await mongo.create_workflow(wf)
    doc = await raw["workflows"].find_one({"_id": "wf-seed"})
    assert doc is not None and "definition" not in doc
    assert [n["id"] for n in doc["nodes"]] == ["a", "b"]
    assert doc["edges"] == [{"from": "a", "to": "b"}]
    assert (doc["name"], doc["status"], doc["variables"]) == ("seed", "active", {"greeting": "hi"})
    assert doc["created_at"] == stored("mongodb", T0)
    edited = definition("seed, edited", "x")
    await mongo.update_workflow("wf-seed", edited, T0)
    doc = await raw["workflows"].find_one({"_id": "wf-seed"})
    assert doc is not None and [n["id"] for n in doc["nodes"]] == ["x"] and doc["version"] == 2


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_documents_of_the_old_layout_are_read_and_upgraded(
    mongo_url: str, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    old_definition = definition("old", "a", "b").dump()
    await raw["workflows"].insert_one(
        {
            "_id": "wf-old",
            "name": "old",
            "status": "active",
            "version": 1,
            "definition": old_definition,
            "created_at": T0,
            "updated_at": T0,
        }
    )
    run = new_run("wf-old")
    old_run = run.model_dump(exclude={"node_states", "events", "definition"})
    old_run.update(status="running", definition=old_definition, node_states={}, last_seq=2)
    old_run["events"] = [
        {"seq": s, "type": "log", "node_id": None, "timestamp": T0, "data": {"n": s}}
        for s in (2, 1)
    ]
    await raw["workflow_runs"].insert_one(old_run)
    await raw["workflow_runs"].create_index("idempotency_key", unique=True, sparse=True)

    store = MongoStore(mongo_url)
    await store.start()
    try:
        got = await store.get_workflow("wf-old")
        assert got is not None and got.definition == WorkflowDefinition.model_validate(
            old_definition
        )
        doc = await raw["workflows"].find_one({"_id": "wf-old"})
        assert doc is not None and "definition" not in doc and len(doc["nodes"]) == 2
        moved = await store.get_run(run.execution_id)
        assert moved is not None and [e.data for e in moved.events] == [{"n": 1}, {"n": 2}]
        run_doc = await raw["workflow_runs"].find_one({"execution_id": run.execution_id})
        assert run_doc is not None and "events" not in run_doc
        assert await raw["workflow_run_events"].count_documents({}) == 2
        # The old global idempotency index is gone.
        await store.create_run(new_run("wf-a", key="k"))
        await store.create_run(new_run("wf-b", key="k"))
    finally:
        await store.close()


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_workflows_saved_before_the_trigger_index_are_indexed_on_start(
    mongo_url: str, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    """Before the index, workflows kept their triggers in the definition only."""
    packed_schedule = {**SCHEDULE, "inputs": {"$odd.key": 1}}  # stored packed
    store = MongoStore(mongo_url)
    await store.start()
    try:
        await save(store, "wf-plain", definition("plain"), 0)
        await save(store, "wf-old", triggered("old", hook("shared"), SCHEDULE), 1)
        await save(store, "wf-new", triggered("new", hook("own")), 2)
        await save(store, "wf-packed", triggered("packed", packed_schedule), 3)
    finally:
        await store.close()
    doc = await raw["workflows"].find_one({"_id": "wf-packed"})
    assert doc is not None and "__ductwork_json__" in doc["definition_extra"]
    # As a version without the index left them: no rows, and a path declared twice.
    await raw["workflows"].update_one(
        {"_id": "wf-new"},
        {"$set": {"definition_extra.triggers": [hook("/shared"), hook("own")]}},
    )
    await raw["workflow_triggers"].delete_many({})

    store = MongoStore(mongo_url)
    await store.start()
    try:
        assert await hook_holder(store, "shared") == "wf-old"  # the older one keeps it
        assert await hook_holder(store, "own") == "wf-new"
        scheduled = [w.id for w in await store.list_scheduled_workflows()]
        assert scheduled == ["wf-old", "wf-packed"]
        with pytest.raises(TriggerConflict):
            await store.update_workflow("wf-new", triggered("new", hook("shared")), T0)
        rows = await raw["workflow_triggers"].count_documents({})
    finally:
        await store.close()
    store = MongoStore(mongo_url)
    await store.start()  # nothing missing now: nothing written
    await store.close()
    assert await raw["workflow_triggers"].count_documents({}) == rows == 4


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_a_save_that_stopped_half_way_does_not_hold_a_path_for_ever(
    mongo: MongoStore, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    """No transactions: a process can die between claiming a path and writing the workflow."""
    now = datetime.now(UTC)
    claims = raw["workflow_triggers"]

    async def leftover(key: str, workflow_id: str, age: timedelta) -> None:
        row = {"workflow_id": workflow_id, "type": "webhook", "key": key}
        await claims.insert_one({**row, "claimed_at": now - age})

    await leftover("gone-long-ago", "wf-never-written", timedelta(minutes=5))
    await leftover("in-flight", "wf-being-saved", timedelta(seconds=1))
    # Neither is served: their workflows do not exist (yet).
    assert await hook_holder(mongo, "gone-long-ago") is None
    assert await hook_holder(mongo, "in-flight") is None
    # A fresh claim may be a save still under way: a conflict, and nothing written.
    with pytest.raises(TriggerConflict) as raised:
        await save(mongo, "wf-b", triggered("b", hook("gone-long-ago"), hook("in-flight")))
    assert raised.value.workflow_id == "wf-being-saved"
    assert await mongo.get_workflow("wf-b") is None
    assert await claims.count_documents({"workflow_id": "wf-b"}) == 0
    # An old one whose workflow never came is taken over.
    await save(mongo, "wf-b", triggered("b", hook("gone-long-ago")))
    assert await hook_holder(mongo, "gone-long-ago") == "wf-b"
    assert await claims.count_documents({"key": "gone-long-ago"}) == 1

    # A workflow that dropped a path but stopped before giving its row back.
    await save(mongo, "wf-a", triggered("a", hook("kept"), hook("dropped")))
    await claims.update_many(
        {"workflow_id": "wf-a"}, {"$set": {"claimed_at": now - timedelta(minutes=5)}}
    )
    await raw["workflows"].update_one(
        {"_id": "wf-a"}, {"$set": {"definition_extra.triggers": [hook("kept")]}}
    )
    assert await hook_holder(mongo, "dropped") is None  # not declared: not served
    with pytest.raises(TriggerConflict):  # still declared, however old the row
        await save(mongo, "wf-c", triggered("c", hook("kept")))
    await save(mongo, "wf-c", triggered("c", hook("dropped")))
    assert await hook_holder(mongo, "dropped") == "wf-c"


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_events_live_outside_the_run_document(
    mongo: MongoStore, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    run = await stored_run(mongo, new_run())
    await mongo.checkpoint(run.execution_id, Checkpoint(events=[event(1), event(2)]))
    doc = await raw["workflow_runs"].find_one({"execution_id": run.execution_id})
    assert doc is not None and "events" not in doc and doc["last_seq"] == 2
    assert await raw["workflow_run_events"].count_documents({"execution_id": run.execution_id}) == 2


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_a_crash_between_the_two_writes_loses_and_doubles_nothing(
    mongo: MongoStore, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    """Events written, run document not: invisible; a retry, a takeover, a stale writer."""
    run = await stored_run(mongo, new_run(), status=RunStatus.RUNNING)
    eid = run.execution_id
    assert await mongo.acquire_lease(eid, "a", T0 + timedelta(seconds=10), T0)
    first = Checkpoint(
        node_states={"n": NodeState(status=NodeStatus.COMPLETED, output="a's")},
        events=[event(1, "n", by="a"), event(2, "n", by="a")],
    )
    # "a" dies after step 1 of its checkpoint (the events) and before step 2.
    docs = [mongo_event_doc(eid, e, await mongo._epoch(eid, "a")) for e in first.events]
    await raw["workflow_run_events"].insert_many(docs)
    seen = await mongo.get_run(eid)
    assert seen is not None and seen.events == [] and seen.last_seq == 0
    assert await mongo.list_events(eid) == []

    # Retrying the same checkpoint finds its events already there: success, no doubles.
    await mongo.checkpoint(eid, first, owner="a")
    retried = await mongo.get_run(eid)
    assert retried is not None
    assert [(e.seq, e.data) for e in retried.events] == [(1, {"by": "a"}), (2, {"by": "a"})]

    # "a" writes seq 3, dies before committing; "b" takes over and numbers from last_seq.
    orphan = mongo_event_doc(eid, event(3, "n", by="a"), await mongo._epoch(eid, "a"))
    await raw["workflow_run_events"].insert_one(orphan)
    later = T0 + timedelta(seconds=11)
    taken = await mongo.acquire_lease(eid, "b", later + timedelta(seconds=10), later)
    assert taken is not None and taken.last_seq == 2
    await mongo.checkpoint(eid, Checkpoint(events=[event(3, "n", by="b")]), owner="b")
    # "a" wakes up: it can neither overwrite b's event nor commit.
    with pytest.raises(LeaseLost):
        await mongo.checkpoint(
            eid, Checkpoint(events=[event(3, "n", by="a"), event(4, "n", by="a")]), owner="a"
        )
    final = await mongo.get_run(eid)
    assert final is not None
    assert [(e.seq, e.data["by"]) for e in final.events] == [(1, "a"), (2, "a"), (3, "b")]
    assert final.last_seq == 3
    # a's refused event 4 was removed again; b's next checkpoint is not blocked by it.
    assert await raw["workflow_run_events"].count_documents({"execution_id": eid}) == 3
    await mongo.checkpoint(eid, Checkpoint(events=[event(4, "n", by="b")]), owner="b")
    assert [e.data["by"] for e in await mongo.list_events(eid, after_seq=3)] == ["b"]
    # b's own leftover of a refused checkpoint (its clean-up failed) does not block b.
    leftover = mongo_event_doc(eid, event(5, "n", by="refused"), await mongo._epoch(eid, "b"))
    await raw["workflow_run_events"].insert_one(leftover)
    await mongo.checkpoint(eid, Checkpoint(events=[event(5, "n", by="b")]), owner="b")
    assert [e.data["by"] for e in await mongo.list_events(eid, after_seq=4)] == ["b"]


@pytest.mark.parametrize("store_kind", MONGO_KINDS)
async def test_mongodb_a_run_document_past_16_mb_is_refused_with_nothing_written(
    mongo: MongoStore, raw: AsyncDatabase[dict[str, Any]]
) -> None:
    run = await stored_run(mongo, new_run())
    eid = run.execution_id
    nine_mb = "x" * (9 * 1024 * 1024)
    await mongo.checkpoint(
        eid,
        Checkpoint(
            node_states={"first": NodeState(status=NodeStatus.COMPLETED, output=nine_mb)},
            events=[event(1, "first")],
        ),
    )
    too_much = Checkpoint(
        node_states={"second": NodeState(status=NodeStatus.COMPLETED, output=nine_mb)},
        events=[event(2, "second"), event(3, "second")],
        run_fields={"status": RunStatus.SUCCESS},
    )
    with pytest.raises(UnstorableValue, match="16 MB"):
        await mongo.checkpoint(eid, too_much)
    other = await stored_run(mongo, new_run())
    with pytest.raises(PartialCheckpoint) as raised:
        await mongo.checkpoint_many(
            [(other.execution_id, Checkpoint(events=[event(1)])), (eid, too_much)]
        )
    assert set(raised.value.failures) == {eid}
    assert isinstance(raised.value.failures[eid], UnstorableValue)
    got = await mongo.get_run(eid)
    assert got is not None
    assert set(got.node_states) == {"first"} and got.status is RunStatus.QUEUED
    assert [e.seq for e in got.events] == [1] and got.last_seq == 1
    assert await raw["workflow_run_events"].count_documents({"execution_id": eid}) == 1
    applied = await mongo.get_run(other.execution_id)
    assert applied is not None and applied.last_seq == 1
    # A single value past the limit: refused before anything is sent.
    with pytest.raises(UnstorableValue):
        await mongo.checkpoint(
            eid, Checkpoint(node_states={"huge": NodeState(output="y" * (17 * 1024 * 1024))})
        )
