"""The MongoDB store, on PyMongo's native asyncio client (`AsyncMongoClient`).

Collections (SEED.md's names): `workflows` (`_id` is the workflow id),
`workflow_versions` (every saved definition) and `workflow_runs` (one document a
run, keyed by a unique `execution_id`). A run document holds its node states
under `node_states.<node id>` and its events in an `events` array, so one
`update_one` applies a whole checkpoint atomically: `$set` per node (parallel
branches touch different paths and never overwrite each other), `$push` for
events, `$set` for run fields.

Two encodings keep arbitrary data storable:

- node ids become field names, so `%`, `.`, `$` and NUL in them are
  percent-encoded (`a.b` is stored as `a%2Eb`) and decoded on the way out;
- user data (outputs, event data, variables, results, definitions) is stored as
  native BSON, except a document with a key MongoDB will not take in an update
  (leading `$`, a `.` on servers before 5.0, NUL), which is kept as JSON text
  inside `{"__ductwork_json__": "..."}`.

Datetimes are stored as BSON dates, which hold milliseconds: microseconds are
truncated. They come back timezone-aware, in UTC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    Run,
    RunStatus,
    Workflow,
    WorkflowDefinition,
    utcnow,
)
from ductwork.store._codec import (
    FINISHED_RUN_STATUSES,
    QUEUED_GRACE,
    dumps,
    loads,
    run_field_values,
    to_jsonable,
)
from ductwork.store.base import DuplicateRun, LeaseLost, StoreError

__all__ = ["MongoStore"]

Document = dict[str, Any]

_PACKED = "__ductwork_json__"
_SCALARS = (str, int, float, bool, type(None))
_RUN_JSON_FIELDS = frozenset({"result", "definition", "variables"})
# How often request_cancel retries its compare-and-set before settling for the flag.
_CANCEL_ATTEMPTS = 20


def _bad_key(key: str) -> bool:
    return key.startswith("$") or "." in key or "\x00" in key or key == _PACKED


def _needs_packing(value: Any) -> bool:
    """Whether a JSON value has a key MongoDB would refuse (walks keys, not values)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if _bad_key(key):
                    return True
                if isinstance(child, (dict, list)):
                    stack.append(child)
        elif isinstance(item, list):
            stack.extend(child for child in item if isinstance(child, (dict, list)))
    return False


def _pack(value: Any) -> Any:
    """User data as BSON-ready JSON (see the module docstring)."""
    if type(value) in _SCALARS:
        return value
    value = to_jsonable(value)
    if _needs_packing(value):
        return {_PACKED: dumps(value)}
    return value


def _unpack(value: Any) -> Any:
    if type(value) is dict and len(value) == 1 and _PACKED in value:
        return loads(value[_PACKED])
    return value


def _encode_node_id(node_id: str) -> str:
    """A node id as a field name: `%`, `.`, `$` and NUL percent-encoded."""
    if not any(char in node_id for char in "%.$\x00"):
        return node_id
    return (
        node_id.replace("%", "%25").replace(".", "%2E").replace("$", "%24").replace("\x00", "%00")
    )


def _decode_node_id(key: str) -> str:
    # Every '%' in a stored key came from the encoding, so unquoting is exact.
    return unquote(key) if "%" in key else key


def _state_doc(state: NodeState) -> Document:
    doc = state.model_dump()
    doc["status"] = state.status.value
    doc["output"] = _pack(state.output)
    doc["meta"] = _pack(state.meta)
    return doc


def _event_doc(event: Event) -> Document:
    doc = event.model_dump()
    doc["data"] = _pack(event.data)
    return doc


def _lease_free(now: datetime) -> list[Document]:
    """Alternatives of `$or`: nobody holds the lease, or it has expired."""
    return [
        {"lease_owner": None},
        {"lease_expires_at": None},
        {"lease_expires_at": {"$lt": now}},
    ]


def _workflow(doc: Mapping[str, Any], *, version: Mapping[str, Any] | None = None) -> Workflow:
    source = doc if version is None else version
    return Workflow(
        id=doc["_id"],
        version=source["version"],
        definition=WorkflowDefinition.model_validate(_unpack(source["definition"])),
        created_at=doc["created_at"],
        updated_at=doc["updated_at"] if version is None else version["created_at"],
    )


def _run(doc: Mapping[str, Any]) -> Run:
    data = dict(doc)
    data.pop("_id", None)
    for key in _RUN_JSON_FIELDS:
        data[key] = _unpack(data.get(key))
    states = data.get("node_states") or {}
    data["node_states"] = {
        _decode_node_id(key): {
            **state,
            "output": _unpack(state.get("output")),
            "meta": _unpack(state.get("meta")),
        }
        for key, state in states.items()
    }
    events = [{**event, "data": _unpack(event.get("data"))} for event in data.get("events") or ()]
    # Concurrent checkpoints push in commit order, not seq order.
    events.sort(key=lambda event: event["seq"])
    data["events"] = events
    return Run.model_validate(data)


class MongoStore:
    """The `Store` on MongoDB: `mongodb://host/db` or `mongodb+srv://...` (db: `ductwork`)."""

    def __init__(self, url: str, **client_options: Any) -> None:
        """Prepare a store for `url`; nothing connects before `start()`.

        client_options are passed on to `AsyncMongoClient` (pool sizes, timeouts).
        """
        self._url = url
        self._client_options = client_options
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None

    def _collection(self, name: str) -> AsyncCollection[Document]:
        if self._db is None:
            raise StoreError("the store is not started")
        return self._db[name]

    @property
    def _workflows(self) -> AsyncCollection[Document]:
        return self._collection("workflows")

    @property
    def _versions(self) -> AsyncCollection[Document]:
        return self._collection("workflow_versions")

    @property
    def _runs(self) -> AsyncCollection[Document]:
        return self._collection("workflow_runs")

    async def start(self) -> None:
        """Connect and create the indexes (idempotent)."""
        if self._client is not None:
            return
        client: AsyncMongoClient[Document] = AsyncMongoClient(
            self._url, tz_aware=True, tzinfo=UTC, **self._client_options
        )
        self._client = client
        self._db = client.get_default_database("ductwork")
        await self._workflows.create_index([("created_at", DESCENDING)])
        await self._versions.create_index(
            [("workflow_id", ASCENDING), ("version", ASCENDING)], unique=True
        )
        await self._runs.create_index("execution_id", unique=True)
        await self._runs.create_index([("workflow_id", ASCENDING), ("created_at", DESCENDING)])
        await self._runs.create_index(
            "idempotency_key",
            unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        )
        await self._runs.create_index([("status", ASCENDING), ("created_at", ASCENDING)])

    async def close(self) -> None:
        """Release connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._db = None

    # Workflows --------------------------------------------------------------------

    async def create_workflow(self, workflow: Workflow) -> Workflow:
        """Insert a new workflow (version 1)."""
        definition = _pack(workflow.definition.dump())
        try:
            await self._workflows.insert_one(
                {
                    "_id": workflow.id,
                    "name": workflow.definition.name,
                    "status": workflow.definition.status,
                    "version": workflow.version,
                    "definition": definition,
                    "created_at": workflow.created_at,
                    "updated_at": workflow.updated_at,
                }
            )
        except DuplicateKeyError as exc:
            raise StoreError(f"workflow {workflow.id} exists already") from exc
        await self._versions.replace_one(
            {"workflow_id": workflow.id, "version": workflow.version},
            {
                "workflow_id": workflow.id,
                "version": workflow.version,
                "definition": definition,
                "created_at": workflow.updated_at,
            },
            upsert=True,
        )
        return workflow

    async def get_workflow(self, workflow_id: str) -> Workflow | None:
        """The current version of a workflow, or None."""
        doc = await self._workflows.find_one({"_id": workflow_id})
        return None if doc is None else _workflow(doc)

    async def get_workflow_version(self, workflow_id: str, version: int) -> Workflow | None:
        """One stored version of a workflow (updated_at: when it was saved), or None."""
        doc = await self._workflows.find_one({"_id": workflow_id}, {"created_at": 1})
        if doc is None:
            return None
        saved = await self._versions.find_one({"workflow_id": workflow_id, "version": version})
        return None if saved is None else _workflow(doc, version=saved)

    async def list_workflows(self, limit: int = 100, offset: int = 0) -> list[Workflow]:
        """Workflows, newest first."""
        cursor = (
            self._workflows.find()
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [_workflow(doc) async for doc in cursor]

    async def update_workflow(
        self, workflow_id: str, definition: WorkflowDefinition, updated_at: datetime
    ) -> Workflow | None:
        """Replace the definition and bump the version; None when the id is unknown."""
        packed = _pack(definition.dump())
        doc = await self._workflows.find_one_and_update(
            {"_id": workflow_id},
            {
                "$set": {
                    "name": definition.name,
                    "status": definition.status,
                    "definition": packed,
                    "updated_at": updated_at,
                },
                "$inc": {"version": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        # Keyed by (workflow, version): a retry after a failure here stores it once.
        await self._versions.replace_one(
            {"workflow_id": workflow_id, "version": doc["version"]},
            {
                "workflow_id": workflow_id,
                "version": doc["version"],
                "definition": packed,
                "created_at": updated_at,
            },
            upsert=True,
        )
        return _workflow(doc)

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow and its versions; its runs stay readable. False when unknown."""
        result = await self._workflows.delete_one({"_id": workflow_id})
        await self._versions.delete_many({"workflow_id": workflow_id})
        return result.deleted_count > 0

    # Runs -------------------------------------------------------------------------

    async def create_run(self, run: Run) -> Run:
        """Insert a run; raises DuplicateRun when its idempotency key is taken."""
        last_seq = max([run.last_seq, *(e.seq for e in run.events)])
        doc = run.model_dump(exclude={"node_states", "events", "definition", "variables", "result"})
        doc.update(
            status=run.status.value,
            definition=_pack(run.definition.dump()),
            variables=_pack(run.variables),
            result=_pack(run.result),
            node_states={_encode_node_id(k): _state_doc(s) for k, s in run.node_states.items()},
            events=[_event_doc(e) for e in run.events],
            last_seq=last_seq,
        )
        try:
            await self._runs.insert_one(doc)
        except DuplicateKeyError as exc:
            if run.idempotency_key is not None:
                existing = await self._runs.find_one(
                    {"idempotency_key": run.idempotency_key}, {"_id": 0}
                )
                if existing is not None:
                    raise DuplicateRun(_run(existing)) from exc
            raise StoreError(f"run {run.execution_id} exists already") from exc
        return run.model_copy(update={"last_seq": last_seq})

    async def get_run(self, execution_id: str, *, with_events: bool = True) -> Run | None:
        """A run with all node states (and its events, in order, when asked)."""
        projection: Document = {"_id": 0} if with_events else {"_id": 0, "events": 0}
        doc = await self._runs.find_one({"execution_id": execution_id}, projection)
        return None if doc is None else _run(doc)

    async def list_runs(self, workflow_id: str, limit: int = 100, offset: int = 0) -> list[Run]:
        """Runs of a workflow, newest first, with node states and events."""
        cursor = (
            self._runs.find({"workflow_id": workflow_id}, {"_id": 0})
            .sort([("created_at", DESCENDING), ("execution_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [_run(doc) async for doc in cursor]

    async def checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, *, owner: str | None = None
    ) -> None:
        """Apply node states (upsert per node), append events, set run fields: one commit.

        Raises StoreError when the run is unknown or an event's seq is taken,
        LeaseLost when `owner` is given and does not hold the lease, and
        ValueError for a run field a checkpoint may not set.
        """
        fields = run_field_values(checkpoint.run_fields)
        if not checkpoint:
            return
        changes: Document = {
            f"node_states.{_encode_node_id(node_id)}": _state_doc(state)
            for node_id, state in checkpoint.node_states.items()
        }
        for key, value in fields.items():
            changes[key] = _pack(value) if key in _RUN_JSON_FIELDS else value
        update: Document = {}
        if changes:
            update["$set"] = changes
        selector: Document = {"execution_id": execution_id}
        if owner is not None:
            selector["lease_owner"] = owner
        if checkpoint.events:
            seqs = [event.seq for event in checkpoint.events]
            update["$push"] = {"events": {"$each": [_event_doc(e) for e in checkpoint.events]}}
            update["$max"] = {"last_seq": max(seqs)}
            # Events are appended, never rewritten: refuse a seq the run has already.
            selector["events.seq"] = {"$nin": seqs}
        result = await self._runs.update_one(selector, update)
        if result.matched_count == 0:
            if owner is not None and not await self._runs.count_documents(
                {"execution_id": execution_id, "lease_owner": owner}, limit=1
            ):
                raise LeaseLost(f"{owner} does not hold the lease of run {execution_id}")
            if checkpoint.events and await self._runs.count_documents(
                {"execution_id": execution_id}, limit=1
            ):
                raise StoreError(f"checkpoint of run {execution_id} refused: an event seq is taken")
            raise StoreError(f"unknown run {execution_id}")

    async def checkpoint_many(
        self, items: Sequence[tuple[str, Checkpoint]], *, owner: str | None = None
    ) -> None:
        """Several runs' checkpoints, concurrently; each run's update is atomic on its own
        (MongoDB without a replica set has no multi-document transaction)."""
        results = await asyncio.gather(
            *(self.checkpoint(eid, checkpoint, owner=owner) for eid, checkpoint in items),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def list_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """Events of a run with seq > after_seq, in order."""
        doc = await self._runs.find_one(
            {"execution_id": execution_id},
            {
                "_id": 0,
                "events": {
                    "$filter": {
                        "input": "$events",
                        "as": "event",
                        "cond": {"$gt": ["$$event.seq", after_seq]},
                    }
                },
            },
        )
        if doc is None:
            return []
        events = [
            Event.model_validate({**event, "data": _unpack(event.get("data"))})
            for event in doc.get("events") or ()
        ]
        events.sort(key=lambda event: event.seq)
        return events

    # Run control across processes ---------------------------------------------------

    async def request_cancel(self, execution_id: str) -> Run | None:
        """Set the cancel flag; a queued run nobody holds becomes cancelled at once.

        Cancelling a queued run also appends its `run_finished` event in the same
        update (a compare-and-set on `last_seq`, retried if a writer slips in). A
        finished run is left as it is.
        """
        for _ in range(_CANCEL_ATTEMPTS):
            doc = await self._runs.find_one(
                {"execution_id": execution_id},
                {"status": 1, "last_seq": 1, "lease_owner": 1, "lease_expires_at": 1},
            )
            if doc is None:
                return None
            now = utcnow()
            lease = doc.get("lease_expires_at")
            unleased = doc.get("lease_owner") is None or lease is None or lease < now
            if doc["status"] != RunStatus.QUEUED.value or not unleased:
                break
            seq = doc["last_seq"] + 1
            finished = Event(
                seq=seq, type="run_finished", timestamp=now, data={"status": "cancelled"}
            )
            result = await self._runs.update_one(
                {
                    "execution_id": execution_id,
                    "status": RunStatus.QUEUED.value,
                    "last_seq": doc["last_seq"],
                    "$or": _lease_free(now),
                },
                {
                    "$set": {
                        "status": RunStatus.CANCELLED.value,
                        "cancel_requested": True,
                        "end_time": now,
                        "lease_owner": None,
                        "lease_expires_at": None,
                        "last_seq": seq,
                    },
                    "$push": {"events": _event_doc(finished)},
                },
            )
            if result.modified_count:
                return await self.get_run(execution_id)
        await self._runs.update_one(
            {"execution_id": execution_id, "status": {"$nin": list(FINISHED_RUN_STATUSES)}},
            {"$set": {"cancel_requested": True}},
        )
        return await self.get_run(execution_id)

    async def acquire_lease(
        self, execution_id: str, owner: str, expires_at: datetime, now: datetime
    ) -> Run | None:
        """Take the run's lease when free, expired or already ours (compare-and-set).

        Returns the run (node states, not events: the worker needs only
        `last_seq`) on success, None when another owner holds a live lease, the
        run is finished or unknown.
        """
        doc = await self._runs.find_one_and_update(
            {
                "execution_id": execution_id,
                "status": {"$nin": list(FINISHED_RUN_STATUSES)},
                "$or": [{"lease_owner": owner}, *_lease_free(now)],
            },
            {"$set": {"lease_owner": owner, "lease_expires_at": expires_at}},
            projection={"_id": 0, "events": 0},
            return_document=ReturnDocument.AFTER,
        )
        return None if doc is None else _run(doc)

    async def renew_lease(self, execution_id: str, owner: str, expires_at: datetime) -> bool:
        """Extend our lease; False when we lost it."""
        result = await self._runs.update_one(
            {"execution_id": execution_id, "lease_owner": owner},
            {"$set": {"lease_expires_at": expires_at}},
        )
        return result.matched_count > 0

    async def release_lease(self, execution_id: str, owner: str) -> None:
        """Give the lease up (no-op when not ours)."""
        await self._runs.update_one(
            {"execution_id": execution_id, "lease_owner": owner},
            {"$set": {"lease_owner": None, "lease_expires_at": None}},
        )

    async def is_cancel_requested(self, execution_id: str) -> bool:
        """Whether someone asked this run to stop (False for an unknown run)."""
        doc = await self._runs.find_one({"execution_id": execution_id}, {"cancel_requested": 1})
        return bool(doc and doc.get("cancel_requested"))

    async def find_runs_to_resume(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of runs that need a worker, oldest first.

        - running or queued runs whose lease is set and has expired (the worker died);
        - running runs nobody holds (a worker let go without finishing them);
        - waiting runs whose `wake_at` has come and whose lease is not live;
        - queued runs nobody holds that were created more than `QUEUED_GRACE`
          (2 s) before `now` (the queue lost them; fresher ones are on their way).
        """
        expired = [{"lease_expires_at": None}, {"lease_expires_at": {"$lt": now}}]
        running, queued = RunStatus.RUNNING.value, RunStatus.QUEUED.value
        cursor = (
            self._runs.find(
                {
                    "$or": [
                        {
                            "status": {"$in": [running, queued]},
                            "lease_owner": {"$ne": None},
                            "$or": expired,
                        },
                        {"status": running, "lease_owner": None},
                        {
                            "status": RunStatus.WAITING.value,
                            "wake_at": {"$lte": now},
                            "$or": _lease_free(now),
                        },
                        {
                            "status": queued,
                            "lease_owner": None,
                            "created_at": {"$lt": now - QUEUED_GRACE},
                        },
                    ]
                },
                {"_id": 0, "execution_id": 1},
            )
            .sort([("created_at", ASCENDING), ("execution_id", ASCENDING)])
            .limit(limit)
        )
        return [doc["execution_id"] async for doc in cursor]
