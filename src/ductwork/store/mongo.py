"""The MongoDB store, on PyMongo's native asyncio client (`AsyncMongoClient`).

Collections (SEED.md's names first):

- `workflows`: one document a workflow in the seed's shape, `_id` the workflow
  id: `name`, `nodes`, `edges`, `variables`, `status`, `metadata`,
  `created_at` at the top level (plus `version`, `updated_at`, and any other
  definition fields under `definition_extra`). Documents written before that,
  with everything inside `definition`, are read as they are and rewritten by
  `start()`.
- `workflow_versions`: every saved definition, keyed by (workflow, version).
- `workflow_runs`: one document a run (unique `execution_id`) with its node
  states under `node_states.<node id>` and the run's fields; `$set` per node,
  so parallel branches never overwrite each other.
- `workflow_triggers`: one document a claim of `triggers.spec.trigger_index`
  (`workflow_id`, `type`, `key`, `claimed_at`), unique on (type, key): what
  refuses a second workflow on one webhook path. Saves claim new rows before
  writing the workflow and drop undeclared ones after (see `_claim_triggers`).
- `workflow_run_events`: one document an event, unique on (execution_id, seq).
  Kept out of the run document so that a checkpoint costs the same whether
  the run has 10 events or 10,000 (and the run document stays far from
  MongoDB's 16 MB limit: node outputs are not stored a second time there).

How a checkpoint stays atomic without transactions (a standalone mongod and
SecantusDB have none). A checkpoint is node states + events + run fields, now
in two collections, written in this order:

1. its events are inserted into `workflow_run_events`, each tagged with the
   writer's lease epoch (below). They are not visible yet: readers return only
   events with `seq <= last_seq` of the run document.
2. one fenced `update_one` of the run document (`lease_owner` must be the
   writer) sets the node states and run fields and raises `last_seq`
   (`$max`). This single-document write is the commit point: events become
   visible together with the node states, or not at all.

A crash or lost connection between 1 and 2 leaves invisible events behind
("orphans"). Retrying the same checkpoint finds them with the same content and
counts that as success, so nothing is lost or duplicated. A worker that takes
the run over numbers its events from the committed `last_seq` and so may meet
an orphan with another content at its seq: it replaces it, but only if the
orphan is above `last_seq` and was written under an older lease. Every
`acquire_lease` increments the run's `lease_epoch` (kept in this store, per
run, for the fenced writes that follow; a run created leased starts at 1),
so a stalled former holder can never replace the events of the worker that
took over, and its own step 2 is refused by the fence (LeaseLost). Committed
events are never rewritten. When step 2 is refused outright (LeaseLost,
unknown run, value too large) the events of step 1 are deleted again; when
its outcome is unknown (connection lost) they stay, for the retry to find.

Events written without a lease holder (`create_run` with events, the
`run_finished` event of `request_cancel`) are committed first inside the run
document (`pending_events`), then copied to `workflow_run_events` and removed
from the run document; readers merge any still pending.

Two encodings keep arbitrary data storable:

- node ids become field names, so `%`, `.`, `$` and NUL in them are
  percent-encoded (`a.b` is stored as `a%2Eb`) and decoded on the way out;
- user data (outputs, event data, variables, results, definitions) is stored as
  native BSON, except a document with a key MongoDB will not take in an update
  (leading `$`, a `.` on servers before 5.0, NUL), which is kept as JSON text
  inside `{"__ductwork_json__": "..."}`.

A run document past 16 MB is refused (UnstorableValue) with nothing written.
Datetimes are stored as BSON dates, which hold milliseconds: microseconds are
truncated. They come back timezone-aware, in UTC.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    Run,
    RunStatus,
    RunSummary,
    Workflow,
    WorkflowDefinition,
    utcnow,
)
from ductwork.retention import PrunePlan
from ductwork.security.audit import append_quietly
from ductwork.security.models import AuditEntry
from ductwork.store._codec import (
    FINISHED_RUN_STATUSES,
    KNOWN_RUN_FIELDS,
    QUEUED_GRACE,
    adopt_known,
    aware,
    declares_node,
    dumps,
    loads,
    prefix_end,
    resume_outcome,
    run_field_values,
    to_jsonable,
)
from ductwork.store.base import (
    Admission,
    DuplicateRun,
    LeaseLost,
    PartialCheckpoint,
    ResumeOutcome,
    RunCursor,
    RunQuery,
    StoreError,
    TriggerConflict,
    UnstorableValue,
)
from ductwork.store.definitions import parse_definition
from ductwork.triggers.spec import normalize_hook_path, trigger_index
from ductwork.usage import UsageDay
from ductwork.versions import WorkflowVersionInfo

if TYPE_CHECKING:
    from ductwork.store.mongo_security import MongoSecurityStore

__all__ = ["MongoStore"]

Document = dict[str, Any]

_PACKED = "__ductwork_json__"
_SCALARS = (str, int, float, bool, type(None))
_RUN_JSON_FIELDS = frozenset({"result", "definition", "variables", "trigger", "usage"})
_SEED_WORKFLOW_FIELDS = ("name", "nodes", "edges", "variables", "status", "metadata")
_DEFINITION_EXTRA = "definition_extra"
# Fields of a run document that are this store's bookkeeping, not the Run's.
# `trigger_type` copies `trigger.type`, which a packed trigger (odd keys) hides from queries.
_INTERNAL_RUN_FIELDS = ("_id", "lease_epoch", "pending_events", "events", "trigger_type")
_NO_EVENTS: Document = {"_id": 0, "pending_events": 0, "events": 0}
# How often request_cancel retries its compare-and-set before settling for the flag.
_CANCEL_ATTEMPTS = 20
# How often a writer looks again at an event seq that changed under it.
_CONFLICT_ATTEMPTS = 3
# Lease epochs remembered for fenced writes; more runs than this are never held at once.
_EPOCH_CACHE_SIZE = 10_000
_DUPLICATE_KEY = 11000
# Indexes of `workflow_runs` earlier versions created that `start()` drops: the
# idempotency key once unique across workflows, and a prefix of today's
# (workflow_id, created_at, execution_id).
_SUPERSEDED_RUN_INDEXES = ({"idempotency_key": 1}, {"workflow_id": 1, "created_at": -1})
# How often a claim, or a resume, is tried again when the row or node changed between reads.
_RETRY_ATTEMPTS = 3
# A trigger row its holder does not declare (a save that stopped between claiming it
# and writing the workflow, or between writing and dropping it) is taken over once
# it is this old; a younger one may be a save still under way.
_STALE_CLAIM = timedelta(minutes=1)
# Lookups of a trigger row's workflow (find_hook, list_scheduled_workflows).
_WITH_WORKFLOW: Document = {
    "$lookup": {
        "from": "workflows",
        "localField": "workflow_id",
        "foreignField": "_id",
        "as": "workflow",
    }
}
# "object to insert too large", "BSONObjectTooLarge", "resulting document after
# update is larger than 16 MB" (and its variants across server versions).
_TOO_LARGE_CODES = frozenset({10334, 10329, 13134, 17419, 17420, 17280})
# Concurrency limits (issue 11): runs that may hold a slot, and runs waiting for one.
_UNFINISHED = [RunStatus.QUEUED.value, RunStatus.RUNNING.value, RunStatus.WAITING.value]
_WAITING: Document = {
    "status": RunStatus.QUEUED.value,
    "admitted": {"$ne": True},
    "cancel_requested": {"$ne": True},
}


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


def _is_packed(value: Any) -> bool:
    return type(value) is dict and len(value) == 1 and _PACKED in value


def _at_or_after(since: datetime) -> Document:
    """A filter for BSON dates at or after `since`, written as `$gt` the millisecond
    before (the same set: BSON dates hold whole milliseconds). SecantusDB's scan of
    the (workflow_id, created_at descending) index leaves out a date equal to a
    `$gte` bound; `$gt` it gets right, and so does MongoDB either way."""
    whole_ms = since.replace(microsecond=since.microsecond // 1000 * 1000)
    return {"$gt": whole_ms - timedelta(milliseconds=1)}


def _dig(doc: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a document (None where a step is missing)."""
    value: Any = doc
    for step in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
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


def _millis(value: datetime) -> datetime:
    """A datetime as a BSON date will give it back (milliseconds)."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _event_doc(execution_id: str, event: Event, epoch: int) -> Document:
    """An event as stored in `workflow_run_events`, tagged with its writer's lease epoch."""
    return {
        "execution_id": execution_id,
        "seq": event.seq,
        "type": event.type,
        "node_id": event.node_id,
        "timestamp": _millis(event.timestamp),
        "data": _pack(event.data),
        "epoch": epoch,
    }


def _without_id(doc: Mapping[str, Any]) -> Document:
    """A copy without `_id` (which `insert_many` adds to the documents it is given)."""
    return {key: value for key, value in doc.items() if key != "_id"}


def _same_event(stored: Mapping[str, Any], doc: Mapping[str, Any]) -> bool:
    """Whether a stored event is the one `doc` would write (a retry's)."""
    return all(stored.get(key) == doc[key] for key in ("type", "node_id", "timestamp", "data"))


def _event(doc: Mapping[str, Any]) -> Event:
    return Event(
        seq=doc["seq"],
        type=doc["type"],
        node_id=doc.get("node_id"),
        timestamp=doc["timestamp"],
        data=_unpack(doc.get("data")) or {},
    )


def _too_large(error: BaseException) -> bool:
    if isinstance(error, DocumentTooLarge):
        return True
    if isinstance(error, OperationFailure):
        if error.code in _TOO_LARGE_CODES:
            return True
        return "too large" in str(error).lower() or "larger than" in str(error).lower()
    return False


def _lease_free(now: datetime) -> list[Document]:
    """Alternatives of `$or`: nobody holds the lease, or it has expired."""
    return [
        {"lease_owner": None},
        {"lease_expires_at": None},
        {"lease_expires_at": {"$lt": now}},
    ]


def _workflow_fields(definition: WorkflowDefinition) -> Document:
    """A definition as top-level fields of a `workflows` document (the seed's shape)."""
    dumped = definition.dump()
    fields: Document = {
        key: _pack(dumped.pop(key)) for key in _SEED_WORKFLOW_FIELDS if key in dumped
    }
    fields[_DEFINITION_EXTRA] = _pack(dumped)
    return fields


def _definition(doc: Mapping[str, Any]) -> WorkflowDefinition:
    if "definition" in doc:  # written before the seed's shape was kept
        return parse_definition(_unpack(doc["definition"]))
    data: Document = dict(_unpack(doc.get(_DEFINITION_EXTRA)) or {})
    data.update({key: _unpack(doc[key]) for key in _SEED_WORKFLOW_FIELDS if key in doc})
    return parse_definition(data)


def _workflow(doc: Mapping[str, Any], *, version: Mapping[str, Any] | None = None) -> Workflow:
    if version is None:
        return Workflow(
            id=doc["_id"],
            version=doc["version"],
            definition=_definition(doc),
            created_at=doc["created_at"],
            updated_at=doc["updated_at"],
        )
    return Workflow(
        id=doc["_id"],
        version=version["version"],
        definition=parse_definition(_unpack(version["definition"])),
        created_at=doc["created_at"],
        updated_at=version["created_at"],
    )


def _run(doc: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = ()) -> Run:
    """A Run from its document and (committed) event documents."""
    data = dict(doc)
    for key in _INTERNAL_RUN_FIELDS:
        data.pop(key, None)
    for key in _RUN_JSON_FIELDS:
        data[key] = _unpack(data.get(key))
    states = data.get("node_states") or {}
    data["node_states"] = {
        _decode_node_id(key): {
            **state,
            "output": _unpack(state.get("output")),
            "meta": _meta(state.get("meta")),
        }
        for key, state in states.items()
    }
    data["events"] = [_event(event) for event in events]
    if isinstance(data.get("definition"), Mapping):
        data["definition"] = parse_definition(data["definition"])
    return Run.model_validate(data)


def _run_fields_of(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A run document read without KNOWN_RUN_FIELDS, node states or events, as `_run`
    would give those of its fields (for `adopt_known`)."""
    data = dict(doc)
    for key in (*_INTERNAL_RUN_FIELDS, "node_states"):
        data.pop(key, None)
    for key in _RUN_JSON_FIELDS.difference(KNOWN_RUN_FIELDS):
        data[key] = _unpack(data.get(key))
    return data


def _meta(stored: Any) -> Any:
    """A node's meta as stored; `resume_node` may have packed its payload on its own."""
    meta = _unpack(stored)
    if isinstance(meta, dict) and isinstance(meta.get("resume_payload"), dict):
        return {**meta, "resume_payload": _unpack(meta["resume_payload"])}
    return meta


def _declares(workflow: Workflow, type_: str, key: str) -> bool:
    """Whether the workflow's current definition makes this trigger claim."""
    return (type_, key) in trigger_index(workflow.id, workflow.definition)


def _committed(
    doc: Mapping[str, Any], events: Iterable[Mapping[str, Any]], after_seq: int = 0
) -> list[Mapping[str, Any]]:
    """The run's visible events: stored ones up to `last_seq`, plus any still pending."""
    last_seq = doc.get("last_seq", 0)
    by_seq = {e["seq"]: e for e in events if after_seq < e["seq"] <= last_seq}
    for pending in doc.get("pending_events") or ():
        if after_seq < pending["seq"] <= last_seq:
            by_seq.setdefault(pending["seq"], pending)
    for legacy in doc.get("events") or ():  # arrays not yet moved out by start()
        if after_seq < legacy["seq"]:
            by_seq.setdefault(legacy["seq"], legacy)
    return [by_seq[seq] for seq in sorted(by_seq)]


def _run_filter(query: RunQuery) -> Document:
    """`RunQuery` as a `find` filter (empty: every run)."""
    found: Document = {}
    if query.workflow_id is not None:
        found["workflow_id"] = query.workflow_id
    if query.status is not None:
        found["status"] = query.status.value
    if query.dead_letter is not None:
        # Documents written before `dead_letter` existed have no such field.
        found["dead_letter"] = True if query.dead_letter else {"$ne": True}
    if query.trigger_type is not None:
        found["trigger_type"] = query.trigger_type
    if query.error_workflow_pending is not None:
        # Documents written before the flag existed have no such field.
        found["error_workflow_pending"] = True if query.error_workflow_pending else {"$ne": True}
    if query.parent_execution_id is not None:
        found["parent_execution_id"] = query.parent_execution_id
    return found


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
        # execution id -> (owner, lease epoch) of the leases this store took.
        self._epochs: dict[str, tuple[str, int]] = {}
        # Imported here: mongo_security uses this module's document encoding.
        from ductwork.store.mongo_security import MongoSecurityStore

        self._security = MongoSecurityStore(self._collection)

    @property
    def security(self) -> MongoSecurityStore:
        """Users, API keys, sessions, credentials and the audit log, in the same database."""
        return self._security

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

    @property
    def _events(self) -> AsyncCollection[Document]:
        return self._collection("workflow_run_events")

    @property
    def _triggers(self) -> AsyncCollection[Document]:
        return self._collection("workflow_triggers")

    async def start(self) -> None:
        """Connect, create the indexes and bring older documents to today's shape (idempotent)."""
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
        # Runs of a workflow newest first, and the newest of each (`latest_runs`). It
        # replaces the (workflow_id, created_at) index of earlier versions.
        await self._runs.create_index(
            [("workflow_id", ASCENDING), ("created_at", DESCENDING), ("execution_id", DESCENDING)]
        )
        await self._runs.create_index([("created_at", DESCENDING), ("execution_id", DESCENDING)])
        # Idempotency keys were once unique across workflows; now per workflow.
        async for index in await self._runs.list_indexes():
            if dict(index["key"]) in _SUPERSEDED_RUN_INDEXES:
                await self._runs.drop_index(index["name"])
        await self._runs.create_index(
            [("workflow_id", ASCENDING), ("idempotency_key", ASCENDING)],
            unique=True,
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        )
        await self._runs.create_index([("status", ASCENDING), ("created_at", ASCENDING)])
        await self._runs.create_index(
            [("dead_letter", ASCENDING), ("created_at", DESCENDING)],
            partialFilterExpression={"dead_letter": True},
        )
        # The sweep lists these every second; few runs have the flag at any time.
        await self._runs.create_index(
            [("error_workflow_pending", ASCENDING), ("created_at", DESCENDING)],
            partialFilterExpression={"error_workflow_pending": True},
        )
        # A parent's children (cancel cascades to them), few per parent.
        await self._runs.create_index(
            [("parent_execution_id", ASCENDING)],
            partialFilterExpression={"parent_execution_id": {"$type": "string"}},
        )
        await self._triggers.create_index([("type", ASCENDING), ("key", ASCENDING)], unique=True)
        await self._triggers.create_index("workflow_id")
        await self._events.create_index(
            [("execution_id", ASCENDING), ("seq", ASCENDING)], unique=True
        )
        await self._security.create_indexes()
        await self._upgrade_documents()
        await self._index_triggers()

    async def _upgrade_documents(self) -> None:
        """Rewrite documents stored by earlier versions (a no-op once done)."""
        async for doc in self._workflows.find({"definition": {"$exists": True}}):
            await self._workflows.update_one(
                {"_id": doc["_id"], "definition": {"$exists": True}},
                {"$set": _workflow_fields(_definition(doc)), "$unset": {"definition": ""}},
            )
        async for doc in self._runs.find(
            {"events": {"$exists": True}}, {"execution_id": 1, "events": 1}
        ):
            execution_id = doc["execution_id"]
            moved = [{**event, "execution_id": execution_id, "epoch": 0} for event in doc["events"]]
            await self._copy_events(moved)
            await self._runs.update_one({"_id": doc["_id"]}, {"$unset": {"events": ""}})

    async def _index_triggers(self) -> None:
        """Claim the trigger rows stored workflows declare but do not hold.

        Workflows saved before the index existed, or by a save that stopped
        half way. Oldest first: a path two of them declare stays with the one
        holding it, or goes to the older; the other gets the conflict when saved
        again. Reads the index whole (a row a path or schedule: small) and
        writes only what is missing.
        """
        held = {(doc["type"], doc["key"]) async for doc in self._triggers.find({}, {"_id": 0})}
        maybe_triggered: Document = {
            "$or": [
                {f"{_DEFINITION_EXTRA}.triggers.0": {"$exists": True}},
                {f"{_DEFINITION_EXTRA}.{_PACKED}": {"$exists": True}},
            ]
        }
        cursor = self._workflows.find(maybe_triggered).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)]
        )
        async for doc in cursor:
            try:
                workflow = _workflow(doc)
            except ValueError:
                continue  # cannot be loaded; saving it again claims its rows
            for type_, key in trigger_index(workflow.id, workflow.definition):
                if (type_, key) in held:
                    continue
                with contextlib.suppress(DuplicateKeyError):  # another process got there
                    await self._triggers.insert_one(
                        {
                            "workflow_id": workflow.id,
                            "type": type_,
                            "key": key,
                            "claimed_at": utcnow(),
                        }
                    )
                held.add((type_, key))

    async def close(self) -> None:
        """Release connections."""
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._db = None
            self._epochs.clear()

    # Workflows --------------------------------------------------------------------

    async def create_workflow(self, workflow: Workflow) -> Workflow:
        """Insert a new workflow (version 1), claiming its trigger rows first.

        Raises TriggerConflict when another workflow serves one of its webhook
        paths; the rows this call claimed are released again, and the workflow
        is not written.
        """
        claimed = await self._claim_triggers(workflow.id, workflow.definition, held=())
        try:
            await self._workflows.insert_one(
                {
                    "_id": workflow.id,
                    **_workflow_fields(workflow.definition),
                    "version": workflow.version,
                    "created_at": workflow.created_at,
                    "updated_at": workflow.updated_at,
                }
            )
        except DuplicateKeyError as exc:
            await self._release_triggers(workflow.id, claimed)
            raise StoreError(f"workflow {workflow.id} exists already") from exc
        except BaseException:
            await self._release_triggers(workflow.id, claimed)
            raise
        await self._versions.replace_one(
            {"workflow_id": workflow.id, "version": workflow.version},
            {
                "workflow_id": workflow.id,
                "version": workflow.version,
                "definition": _pack(workflow.definition.dump()),
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

    async def list_workflows(
        self, limit: int = 100, offset: int = 0, *, q: str | None = None
    ) -> list[Workflow]:
        """Workflows, newest first; with `q`, those whose name contains it (any case)."""
        # `name` is a top-level string field (the seed's shape; _upgrade_documents
        # moved older documents to it); the user's text is escaped, so matched literally.
        found: Document = {"name": {"$regex": re.escape(q), "$options": "i"}} if q else {}
        cursor = (
            self._workflows.find(found)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return [_workflow(doc) async for doc in cursor]

    async def update_workflow(
        self, workflow_id: str, definition: WorkflowDefinition, updated_at: datetime
    ) -> Workflow | None:
        """Replace the definition and bump the version; None when the id is unknown.

        Trigger rows it newly declares are claimed first (TriggerConflict, with
        those claims released and the workflow unchanged, when another workflow
        holds one); rows it no longer declares are dropped after the write.
        """
        held = [doc async for doc in self._triggers.find({"workflow_id": workflow_id})]
        claimed = await self._claim_triggers(workflow_id, definition, held=held)
        try:
            doc = await self._workflows.find_one_and_update(
                {"_id": workflow_id},
                {
                    "$set": {**_workflow_fields(definition), "updated_at": updated_at},
                    "$unset": {"definition": ""},
                    "$inc": {"version": 1},
                },
                return_document=ReturnDocument.AFTER,
            )
        except BaseException:
            await self._release_triggers(workflow_id, claimed)
            raise
        if doc is None:
            await self._release_triggers(workflow_id, claimed)
            return None
        declared = set(trigger_index(workflow_id, definition))
        dropped = [row["_id"] for row in held if (row["type"], row["key"]) not in declared]
        if dropped:
            # Still ours only: a row could have been taken over meanwhile (see _STALE_CLAIM).
            await self._triggers.delete_many({"_id": {"$in": dropped}, "workflow_id": workflow_id})
        # Keyed by (workflow, version): a retry after a failure here stores it once.
        await self._versions.replace_one(
            {"workflow_id": workflow_id, "version": doc["version"]},
            {
                "workflow_id": workflow_id,
                "version": doc["version"],
                "definition": _pack(definition.dump()),
                "created_at": updated_at,
            },
            upsert=True,
        )
        return _workflow(doc)

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow, its versions and trigger rows; its runs stay readable.

        False when unknown. The workflow goes first: should the rest not follow,
        its rows name a workflow that is gone, which the next claim takes over.
        """
        result = await self._workflows.delete_one({"_id": workflow_id})
        await self._versions.delete_many({"workflow_id": workflow_id})
        await self._triggers.delete_many({"workflow_id": workflow_id})
        return result.deleted_count > 0

    async def _claim_triggers(
        self,
        workflow_id: str,
        definition: WorkflowDefinition,
        *,
        held: Iterable[Mapping[str, Any]],
    ) -> list[tuple[str, str]]:
        """Claim the trigger rows `definition` declares beyond those `held`; returns the claims.

        Raises TriggerConflict when another workflow holds one, having released
        what this call claimed. Sorted, as the SQL store claims them.
        """
        have = {(row["type"], row["key"]) for row in held}
        claimed: list[tuple[str, str]] = []
        try:
            for type_, key in sorted(set(trigger_index(workflow_id, definition)) - have):
                if await self._claim(workflow_id, type_, key):
                    claimed.append((type_, key))
        except BaseException:
            await self._release_triggers(workflow_id, claimed)
            raise
        return claimed

    async def _claim(self, workflow_id: str, type_: str, key: str) -> bool:
        """Claim one row: True when this call wrote it, False when the workflow holds it already.

        A row another workflow holds is taken over only when it is stale: its
        holder does not declare it (any more) and it was claimed over
        `_STALE_CLAIM` ago. Otherwise TriggerConflict.
        """
        for _ in range(_RETRY_ATTEMPTS):
            now = utcnow()
            try:
                await self._triggers.insert_one(
                    {"workflow_id": workflow_id, "type": type_, "key": key, "claimed_at": now}
                )
                return True
            except DuplicateKeyError:
                pass
            row = await self._triggers.find_one({"type": type_, "key": key})
            if row is None:
                continue  # let go meanwhile
            holder = row["workflow_id"]
            if holder == workflow_id:
                return False
            claimed_at = row.get("claimed_at")
            if claimed_at is not None and aware(claimed_at) > now - _STALE_CLAIM:
                raise TriggerConflict(key, holder)
            current = await self.get_workflow(holder)
            if current is not None and _declares(current, type_, key):
                raise TriggerConflict(key, holder)
            taken = await self._triggers.update_one(
                {"_id": row["_id"], "workflow_id": holder, "claimed_at": claimed_at},
                {"$set": {"workflow_id": workflow_id, "claimed_at": now}},
            )
            if taken.modified_count:
                return True
        raise StoreError(f"{type_} trigger {key!r} keeps changing hands; try again")

    async def _release_triggers(self, workflow_id: str, claims: Sequence[tuple[str, str]]) -> None:
        """Give back rows a failed save claimed (best effort: a stale row is taken over later)."""
        if not claims:
            return
        with contextlib.suppress(PyMongoError):
            await self._triggers.delete_many(
                {
                    "workflow_id": workflow_id,
                    "$or": [{"type": type_, "key": key} for type_, key in claims],
                }
            )

    async def find_hook(self, path: str) -> Workflow | None:
        """The workflow serving webhook `path` (normalized, see `normalize_hook_path`).

        One aggregation: the path's row and its workflow. A workflow that does
        not declare the path (a save half way through) does not serve it.
        """
        key = normalize_hook_path(path)
        pipeline: list[Document] = [
            {"$match": {"type": "webhook", "key": key}},
            {"$limit": 1},
            _WITH_WORKFLOW,
        ]
        async for row in await self._triggers.aggregate(pipeline):
            for doc in row["workflow"]:
                workflow = _workflow(doc)
                if _declares(workflow, "webhook", key):
                    return workflow
        return None

    async def list_scheduled_workflows(self) -> list[Workflow]:
        """Every workflow that declares a schedule trigger (paused ones included), oldest first."""
        pipeline: list[Document] = [{"$match": {"type": "schedule"}}, _WITH_WORKFLOW]
        found: list[Workflow] = []
        async for row in await self._triggers.aggregate(pipeline):
            for doc in row["workflow"]:
                workflow = _workflow(doc)
                if _declares(workflow, "schedule", workflow.id):
                    found.append(workflow)
        return sorted(found, key=lambda workflow: (workflow.created_at, workflow.id))

    # Runs -------------------------------------------------------------------------

    async def create_run(self, run: Run, *, audit: AuditEntry | None = None) -> Run:
        """Insert a run; raises DuplicateRun when its workflow has a run with its idempotency key.

        Its events, if any, are committed inside the run document first and then
        moved to `workflow_run_events` (see the module docstring). `audit` (its
        `run.start` entry) is appended right after the run: without multi-document
        transactions the two are two writes, and once the run is stored a failure to
        append is only logged (`AuditLog.record`'s rule: the action took effect).
        """
        last_seq = max([run.last_seq, *(e.seq for e in run.events)])
        doc = run.model_dump(
            exclude={"node_states", "events", "definition", "variables", "result", "trigger"}
        )
        pending = [_event_doc(run.execution_id, e, 0) for e in run.events]
        doc.update(
            status=run.status.value,
            definition=_pack(run.definition.dump()),
            variables=_pack(run.variables),
            result=_pack(run.result),
            trigger=_pack(run.trigger),
            trigger_type=None if run.trigger is None else run.trigger["type"],
            node_states={_encode_node_id(k): _state_doc(s) for k, s in run.node_states.items()},
            last_seq=last_seq,
            # A run created leased (`Executor.lease_new_run`) starts the first lease epoch.
            lease_epoch=0 if run.lease_owner is None else 1,
        )
        if pending:
            doc["pending_events"] = pending
        try:
            await self._runs.insert_one(doc)
        except DuplicateKeyError as exc:
            if run.idempotency_key is not None:
                existing = await self._runs.find_one(
                    {"workflow_id": run.workflow_id, "idempotency_key": run.idempotency_key},
                    {"execution_id": 1},
                )
                if existing is not None:
                    found = await self.get_run(existing["execution_id"])
                    if found is not None:
                        raise DuplicateRun(found) from exc
            raise StoreError(f"run {run.execution_id} exists already") from exc
        except (DocumentTooLarge, OperationFailure) as exc:
            if _too_large(exc):
                raise UnstorableValue(
                    f"run {run.execution_id}: the run document is larger than MongoDB's 16 MB "
                    f"limit; nothing was written"
                ) from exc
            raise
        if run.lease_owner is not None:
            # Its creator's fenced writes need not read the epoch back.
            self._remember_epoch(run.execution_id, run.lease_owner, 1)
        if pending:
            await self._settle_pending(run.execution_id, pending)
        if audit is not None:
            await append_quietly(self._security, audit)
        return run.model_copy(update={"last_seq": last_seq})

    async def _copy_events(self, docs: Sequence[Document]) -> None:
        """Store committed events, overwriting whatever else holds their seqs.

        Only for events already committed in a run document (`last_seq` covers
        them): a different event at such a seq can only be an orphan.
        """
        if not docs:
            return
        try:
            await self._events.insert_many([_without_id(doc) for doc in docs], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                raise
            for error in errors:
                doc = docs[error["index"]]
                with contextlib.suppress(DuplicateKeyError):  # a concurrent copy
                    await self._events.replace_one(
                        {"execution_id": doc["execution_id"], "seq": doc["seq"]},
                        _without_id(doc),
                        upsert=True,
                    )

    async def _settle_pending(self, execution_id: str, pending: Sequence[Document]) -> None:
        """Move committed `pending_events` of a run document to the events collection."""
        await self._copy_events(pending)
        seqs = [doc["seq"] for doc in pending]
        await self._runs.update_one(
            {"execution_id": execution_id},
            {"$pull": {"pending_events": {"seq": {"$in": seqs}}}},
        )

    async def get_run(
        self, execution_id: str, *, with_events: bool = True, with_node_states: bool = True
    ) -> Run | None:
        """A run with all node states and its events, in order (each unless told not to)."""
        projection: Document = {"_id": 0} if with_events else _NO_EVENTS
        if not with_node_states:
            projection = {**projection, "node_states": 0}
        doc = await self._runs.find_one({"execution_id": execution_id}, projection)
        if doc is None:
            return None
        if not with_events:
            return _run(doc)
        return _run(doc, await self._events_of(doc))

    async def _events_of(
        self, doc: Mapping[str, Any], after_seq: int = 0, limit: int | None = None
    ) -> list[Mapping[str, Any]]:
        cursor = self._events.find(
            {
                "execution_id": doc["execution_id"],
                "seq": {"$gt": after_seq, "$lte": doc.get("last_seq", 0)},
            },
            {"_id": 0},
        ).sort("seq", ASCENDING)
        if limit is None:
            return _committed(doc, [event async for event in cursor], after_seq)
        # The first `limit` stored ones, merged with the pending ones, are the first
        # `limit` visible ones: every visible seq below the last stored one read is
        # either stored (and read) or pending.
        page = [event async for event in cursor.limit(limit)]
        return _committed(doc, page, after_seq)[:limit]

    async def find_runs(
        self,
        query: RunQuery = RunQuery(),
        *,
        limit: int = 100,
        offset: int = 0,
        with_events: bool = False,
        after: RunCursor | None = None,
    ) -> list[Run]:
        """Runs matching `query`, newest first, with node states (and events when asked);
        with `after`, those after that cursor (keyset paging)."""
        found = _run_filter(query)
        if after is not None:
            # A range on the (..., created_at, execution_id) indexes; `$or` only sorts
            # out the runs created in the cursor's millisecond.
            found["created_at"] = {"$lte": after.created_at}
            found["$or"] = [
                {"created_at": {"$lt": after.created_at}},
                {"execution_id": {"$lt": after.execution_id}},
            ]
        cursor = (
            self._runs.find(found, {"_id": 0} if with_events else _NO_EVENTS)
            .sort([("created_at", DESCENDING), ("execution_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        docs = [doc async for doc in cursor]
        if not with_events or not docs:
            return [_run(doc) for doc in docs]
        events: dict[str, list[Document]] = {doc["execution_id"]: [] for doc in docs}
        async for event in self._events.find(
            {"execution_id": {"$in": list(events)}}, {"_id": 0}
        ).sort([("execution_id", ASCENDING), ("seq", ASCENDING)]):
            events[event["execution_id"]].append(event)
        return [_run(doc, _committed(doc, events[doc["execution_id"]])) for doc in docs]

    async def latest_runs(self, workflow_ids: Sequence[str]) -> dict[str, RunSummary]:
        """The newest run of each stored workflow of `workflow_ids`, in one aggregation.

        `$sort` on the (workflow_id, created_at, execution_id) index then `$group`
        with `$first`: MongoDB answers it with one index probe per workflow (a
        DISTINCT_SCAN). Runs of ids that are not stored workflows are dropped
        afterwards, as the SQL store never finds them.
        """
        if not workflow_ids:
            return {}
        fields = ("execution_id", "status", "created_at", "start_time", "end_time")
        pipeline: list[Document] = [
            {"$match": {"workflow_id": {"$in": list(workflow_ids)}}},
            {"$sort": {"workflow_id": 1, "created_at": -1, "execution_id": -1}},
            {
                "$group": {
                    "_id": "$workflow_id",
                    **{field: {"$first": f"${field}"} for field in fields},
                }
            },
        ]
        latest = {doc["_id"]: doc async for doc in await self._runs.aggregate(pipeline)}
        stored = self._workflows.find({"_id": {"$in": list(latest)}}, {"_id": 1})
        return {doc["_id"]: RunSummary.model_validate(latest[doc["_id"]]) async for doc in stored}

    async def checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, *, owner: str | None = None
    ) -> None:
        """Apply node states (upsert per node), append events, set run fields: one commit.

        The commit is the fenced update of the run document; events are written
        just before it and only become visible with it (see the module
        docstring). Raises StoreError when the run is unknown or an event's seq
        is taken, LeaseLost when `owner` is given and does not hold the lease,
        UnstorableValue when the run document would pass 16 MB, and ValueError
        for a run field a checkpoint may not set. Applying the same checkpoint
        again (a retry after an error) is harmless.
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
        written: list[int] = []
        epoch = 0
        if checkpoint.events:
            update["$max"] = {"last_seq": max(event.seq for event in checkpoint.events)}
            epoch = await self._epoch(execution_id, owner)
            docs = [_event_doc(execution_id, event, epoch) for event in checkpoint.events]
            written = await self._write_events(execution_id, docs, epoch, owner)
        try:
            result = await self._runs.update_one(selector, update)
        except ConnectionFailure:
            raise  # outcome unknown: the events stay for a retry to find
        except Exception as exc:
            await self._discard_events(execution_id, written, epoch)
            if _too_large(exc):
                raise UnstorableValue(
                    f"run {execution_id}: this checkpoint would make the run document larger "
                    f"than MongoDB's 16 MB limit (node states: "
                    f"{', '.join(sorted(checkpoint.node_states)) or 'none'}); nothing was written"
                ) from exc
            raise
        if result.matched_count == 0:
            await self._discard_events(execution_id, written, epoch)
            await self._refused(execution_id, owner)
        if owner is not None and "lease_owner" in fields:
            # The lease was given up with this commit (`LEASE_FIELDS`), as release_lease
            # does: its epoch is not needed any more.
            known = self._epochs.get(execution_id)
            if known is not None and known[0] == owner:
                del self._epochs[execution_id]

    async def _refused(self, execution_id: str, owner: str | None) -> None:
        """Raise why a run update matched nothing."""
        doc = await self._runs.find_one({"execution_id": execution_id}, {"lease_owner": 1})
        if doc is None:
            raise StoreError(f"unknown run {execution_id}")
        raise LeaseLost(f"{owner} does not hold the lease of run {execution_id}")

    async def _epoch(self, execution_id: str, owner: str | None) -> int:
        """The lease epoch events of this writer are tagged with (0 without a lease)."""
        if owner is None:
            return 0
        known = self._epochs.get(execution_id)
        if known is not None and known[0] == owner:
            return known[1]
        doc = await self._runs.find_one(
            {"execution_id": execution_id}, {"lease_owner": 1, "lease_epoch": 1}
        )
        if doc is None:
            raise StoreError(f"unknown run {execution_id}")
        if doc.get("lease_owner") != owner:
            raise LeaseLost(f"{owner} does not hold the lease of run {execution_id}")
        return int(doc.get("lease_epoch") or 0)

    async def _write_events(
        self, execution_id: str, docs: list[Document], epoch: int, owner: str | None
    ) -> list[int]:
        """Step 1 of a checkpoint: insert its events; returns the seqs this call wrote.

        An event already stored with the same content (a retry) is accepted. One
        with other content is replaced only when it is an orphan of an older
        lease (above the run's `last_seq`, lower epoch); otherwise the seq is
        taken and the checkpoint refused, with what this call wrote removed.
        """
        try:
            await self._events.insert_many(docs, ordered=False)
            return [doc["seq"] for doc in docs]
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            failed = {error["index"] for error in errors}
            written = [doc["seq"] for index, doc in enumerate(docs) if index not in failed]
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                await self._discard_events(execution_id, written, epoch)
                if any(_too_large(OperationFailure("", error.get("code"))) for error in errors):
                    raise UnstorableValue(
                        f"run {execution_id}: an event is larger than MongoDB's 16 MB limit; "
                        f"nothing was written"
                    ) from exc
                raise
            conflicts = [docs[index] for index in sorted(failed)]
        except DocumentTooLarge as exc:
            await self._discard_events(execution_id, [doc["seq"] for doc in docs], epoch)
            raise UnstorableValue(
                f"run {execution_id}: an event is larger than MongoDB's 16 MB limit; "
                f"nothing was written"
            ) from exc
        try:
            for doc in conflicts:
                if await self._resolve_conflict(execution_id, doc, epoch, owner):
                    written.append(doc["seq"])
        except BaseException:
            await self._discard_events(execution_id, written, epoch)
            raise
        return written

    async def _resolve_conflict(
        self, execution_id: str, doc: Document, epoch: int, owner: str | None
    ) -> bool:
        """Settle an event whose seq is stored already; True when this call wrote it."""
        seq = doc["seq"]
        for _ in range(_CONFLICT_ATTEMPTS):
            stored = await self._events.find_one({"execution_id": execution_id, "seq": seq})
            if stored is None:
                try:
                    await self._events.insert_one(_without_id(doc))
                except DuplicateKeyError:
                    continue
                return True
            if _same_event(stored, doc):
                return False
            run = await self._runs.find_one(
                {"execution_id": execution_id}, {"last_seq": 1, "lease_owner": 1}
            )
            if run is None:
                raise StoreError(f"unknown run {execution_id}")
            if owner is not None and run.get("lease_owner") != owner:
                raise LeaseLost(f"{owner} does not hold the lease of run {execution_id}")
            # Above last_seq it is an orphan. One of an older lease may go; so may
            # one of ours (a refused checkpoint whose clean-up failed), since while
            # we hold the lease nobody else writes with our epoch.
            older = stored.get("epoch", 0) < epoch
            ours = owner is not None and stored.get("epoch", 0) == epoch
            if seq <= run.get("last_seq", 0) or not (older or ours):
                raise StoreError(
                    f"checkpoint of run {execution_id} refused: event seq {seq} is taken"
                )
            replaced = await self._events.replace_one(
                {"_id": stored["_id"], "epoch": stored.get("epoch", 0)}, _without_id(doc)
            )
            if replaced.matched_count:
                return True
        raise StoreError(
            f"checkpoint of run {execution_id} refused: event seq {seq} keeps changing"
        )

    async def _discard_events(self, execution_id: str, seqs: Sequence[int], epoch: int) -> None:
        """Remove events a refused checkpoint wrote (never committed ones).

        Best effort: should this fail too, the events stay invisible orphans
        that the next writer at their seqs replaces.
        """
        if not seqs:
            return
        with contextlib.suppress(PyMongoError):
            run = await self._runs.find_one({"execution_id": execution_id}, {"last_seq": 1})
            committed = 0 if run is None else run.get("last_seq", 0)
            await self._events.delete_many(
                {
                    "execution_id": execution_id,
                    "seq": {"$in": [seq for seq in seqs if seq > committed]},
                    "epoch": epoch,
                }
            )

    async def checkpoint_many(
        self, items: Sequence[tuple[str, Checkpoint]], *, owner: str | None = None
    ) -> None:
        """Several runs' checkpoints, concurrently, each applied in full or not at all.

        MongoDB without a replica set has no multi-document transaction, so the
        batch is not atomic: when some runs fail, PartialCheckpoint names exactly
        those (with their errors); the others were applied. When none was
        applied, the first run's error is raised as it is.
        """
        results = await asyncio.gather(
            *(self.checkpoint(eid, checkpoint, owner=owner) for eid, checkpoint in items),
            return_exceptions=True,
        )
        failures: dict[str, BaseException] = {}
        for (execution_id, _), result in zip(items, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancelled: not a store failure
                failures[execution_id] = result
        if not failures:
            return
        if len(failures) == len(items):
            raise next(iter(failures.values()))
        raise PartialCheckpoint(failures)

    async def latest_idempotency_key(self, workflow_id: str, prefix: str) -> str | None:
        """The greatest idempotency key starting with `prefix` among the workflow's runs.

        One probe of the unique (workflow_id, idempotency_key) index: the range
        `prefix <= key < prefix_end(prefix)` (MongoDB compares strings by code
        point), so every character of the prefix is taken literally.
        """
        # `$type` as in the index's partial filter, so the index is eligible.
        bounds: Document = {"$type": "string", "$gte": prefix}
        high = prefix_end(prefix)
        if high is not None:
            bounds["$lt"] = high
        doc = await self._runs.find_one(
            {"workflow_id": workflow_id, "idempotency_key": bounds},
            {"_id": 0, "idempotency_key": 1},
            sort=[("workflow_id", DESCENDING), ("idempotency_key", DESCENDING)],
        )
        return None if doc is None else doc["idempotency_key"]

    async def resume_node(
        self, execution_id: str, node_id: str, payload: Any, now: datetime
    ) -> ResumeOutcome:
        """Hand a parked `wait` node its resume payload, once (compare-and-set).

        One `find_one_and_update` with the conditions in its filter; when it
        matches nothing, one read tells why (`resume_outcome`). A node whose meta
        had to be stored packed (odd keys) is compared and replaced whole instead.
        """
        node = f"node_states.{_encode_node_id(node_id)}"
        now = aware(now)
        parked: Document = {
            "execution_id": execution_id,
            f"{node}.status": "waiting",
            "$or": [{f"{node}.wake_at": None}, {f"{node}.wake_at": {"$gt": now}}],
        }
        resume: Document = {
            f"{node}.meta.resumed": True,
            f"{node}.meta.resume_payload": _pack(payload),
            "wake_at": now,
        }
        for _ in range(_RETRY_ATTEMPTS):
            done = await self._runs.find_one_and_update(
                {
                    **parked,
                    f"{node}.meta.resumable": True,
                    f"{node}.meta.resumed": {"$ne": True},
                },
                {"$set": resume},
                projection={"_id": 1},
            )
            if done is not None:
                return "resumed"
            doc = await self._runs.find_one(
                {"execution_id": execution_id},
                {"_id": 0, node: 1, "definition.nodes.id": 1, f"definition.{_PACKED}": 1},
            )
            if doc is None:
                return "not_found"
            state = _dig(doc, node)
            if not isinstance(state, dict):
                # A node of the run that has not started is there, just not waiting.
                known = declares_node(_unpack(doc.get("definition")), node_id)
                return "not_waiting" if known else "not_found"
            stored_meta = state.get("meta")
            meta = _meta(stored_meta)
            if not isinstance(meta, dict):
                meta = {}
            outcome = resume_outcome(state.get("status", ""), meta, state.get("wake_at"), now)
            if outcome != "resumed":
                return outcome
            if not _is_packed(stored_meta):
                continue  # it became resumable between the two: compare-and-set again
            meta = {**meta, "resumed": True, "resume_payload": payload}
            done = await self._runs.find_one_and_update(
                {**parked, f"{node}.meta": stored_meta},
                {"$set": {f"{node}.meta": _pack(meta), "wake_at": now}},
                projection={"_id": 1},
            )
            if done is not None:
                return "resumed"
        raise StoreError(f"node {node_id!r} of run {execution_id} keeps changing; try again")

    async def list_events(
        self, execution_id: str, after_seq: int = 0, *, limit: int | None = None
    ) -> list[Event]:
        """Events of a run with seq > after_seq, in order; the first `limit` when given."""
        doc = await self._runs.find_one(
            {"execution_id": execution_id},
            {"_id": 0, "execution_id": 1, "last_seq": 1, "pending_events": 1, "events": 1},
        )
        if doc is None:
            return []
        return [_event(event) for event in await self._events_of(doc, after_seq, limit)]

    # Run control across processes ---------------------------------------------------

    async def request_cancel(self, execution_id: str) -> Run | None:
        """Set the cancel flag; a queued run nobody holds becomes cancelled at once.

        Cancelling a queued run also commits its `run_finished` event in the same
        update (a compare-and-set on `last_seq`, retried if a writer slips in),
        as a pending event of the run document, then moves it to the events
        collection. A finished run is left as it is.
        """
        for _ in range(_CANCEL_ATTEMPTS):
            doc = await self._runs.find_one(
                {"execution_id": execution_id},
                {
                    "status": 1,
                    "last_seq": 1,
                    "lease_owner": 1,
                    "lease_expires_at": 1,
                    "lease_epoch": 1,
                },
            )
            if doc is None:
                return None
            now = utcnow()
            lease = doc.get("lease_expires_at")
            unleased = doc.get("lease_owner") is None or lease is None or lease < now
            if doc["status"] != RunStatus.QUEUED.value or not unleased:
                break
            seq = doc["last_seq"] + 1
            # A new epoch: the event may replace an orphan the last holder left at seq.
            epoch = int(doc.get("lease_epoch") or 0) + 1
            finished = _event_doc(
                execution_id,
                Event(seq=seq, type="run_finished", timestamp=now, data={"status": "cancelled"}),
                epoch,
            )
            result = await self._runs.update_one(
                {
                    "execution_id": execution_id,
                    "status": RunStatus.QUEUED.value,
                    "last_seq": doc["last_seq"],
                    "lease_epoch": doc.get("lease_epoch"),
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
                        "lease_epoch": epoch,
                    },
                    "$push": {"pending_events": finished},
                },
            )
            if result.modified_count:
                await self._settle_pending(execution_id, [finished])
                return await self.get_run(execution_id)
        await self._runs.update_one(
            {"execution_id": execution_id, "status": {"$nin": list(FINISHED_RUN_STATUSES)}},
            {"$set": {"cancel_requested": True}},
        )
        # A parked run is due now: the sweep wakes it to be cancelled even when the queue
        # message `cancel` sends is lost (queue/redis.py reads NOACK).
        await self._runs.update_one(
            {"execution_id": execution_id, "status": RunStatus.WAITING.value},
            {"$set": {"wake_at": utcnow()}},
        )
        return await self.get_run(execution_id)

    async def acquire_lease(
        self,
        execution_id: str,
        owner: str,
        expires_at: datetime,
        now: datetime,
        *,
        known: Run | None = None,
    ) -> Run | None:
        """Take the run's lease when free, expired or already ours (compare-and-set).

        Taking over another owner's expired lease adds one to `redrives` in the
        same update. Every acquisition starts a new lease epoch (see the module
        docstring). Returns the run (node states, not events: the worker needs
        only `last_seq`) on success, None when another owner holds a live lease,
        the run is finished or unknown.
        """
        unfinished: Document = {
            "execution_id": execution_id,
            "status": {"$nin": list(FINISHED_RUN_STATUSES)},
        }
        lease = {"lease_owner": owner, "lease_expires_at": expires_at}
        attempts: tuple[tuple[Document, Document], ...] = (
            # Ours already, released, or never taken: no re-drive.
            (
                {
                    **unfinished,
                    "$or": [
                        {"lease_owner": owner},
                        {"lease_owner": None},
                        {"lease_expires_at": None},
                    ],
                },
                {"$set": lease, "$inc": {"lease_epoch": 1}},
            ),
            # Another owner's, expired: that holder stopped without letting go.
            (
                {
                    **unfinished,
                    "lease_owner": {"$nin": [None, owner]},
                    "lease_expires_at": {"$lt": now},
                },
                {"$set": lease, "$inc": {"lease_epoch": 1, "redrives": 1}},
            ),
        )
        # With the run its creator holds, its large fields are not read back (`known`).
        projection: Document = {"_id": 0, "events": 0}
        if known is not None:
            projection.update({key: 0 for key in KNOWN_RUN_FIELDS})
        # Should the lease change between the two compare-and-sets, this answers
        # None as if another owner held it; the sweep offers the run again.
        for selector, update in attempts:
            doc = await self._runs.find_one_and_update(
                selector,
                update,
                projection=projection,
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                break
        else:
            return None
        self._remember_epoch(execution_id, owner, int(doc.get("lease_epoch") or 0))
        pending = doc.get("pending_events")
        if pending:
            await self._settle_pending(execution_id, pending)
        if known is not None:
            if not doc.get("node_states") and not pending:
                fields = _run_fields_of(doc)
                adopted = adopt_known(known, fields)
                if adopted is not None:
                    return adopted
            # It moved on since (another worker drove it): read it whole.
            return await self.get_run(execution_id, with_events=False)
        return _run(doc)

    def _remember_epoch(self, execution_id: str, owner: str, epoch: int) -> None:
        self._epochs.pop(execution_id, None)
        if len(self._epochs) >= _EPOCH_CACHE_SIZE:
            # The oldest entry (dicts keep insertion order); it is looked up again if needed.
            self._epochs.pop(next(iter(self._epochs)))
        self._epochs[execution_id] = (owner, epoch)

    async def renew_lease(self, execution_id: str, owner: str, expires_at: datetime) -> bool:
        """Extend our lease; False when we lost it."""
        result = await self._runs.update_one(
            {"execution_id": execution_id, "lease_owner": owner},
            {"$set": {"lease_expires_at": expires_at}},
        )
        return result.matched_count > 0

    async def release_lease(self, execution_id: str, owner: str) -> None:
        """Give the lease up (no-op when not ours)."""
        known = self._epochs.get(execution_id)
        if known is not None and known[0] == owner:
            del self._epochs[execution_id]
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
          (2 s) before `now` (the queue lost them; fresher ones are on their way),
          except runs refused a concurrency slot (`queued_reason` set) and not
          asked to cancel, which `find_waiting_heads` offers, the head of each
          workflow's line only.
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
                            # Runs refused a slot: `find_waiting_heads` offers them
                            # (unless asked to cancel: the driver ends those).
                            "$or": [{"queued_reason": None}, {"cancel_requested": True}],
                        },
                    ]
                },
                {"_id": 0, "execution_id": 1},
            )
            .sort([("created_at", ASCENDING), ("execution_id", ASCENDING)])
            .limit(limit)
        )
        return [doc["execution_id"] async for doc in cursor]

    # Sub-workflows (issue 11) ---------------------------------------------------------
    # Usage and budgets (issue 11) -----------------------------------------------------
    async def workflow_cost_since(
        self, workflow_id: str, since: datetime, *, exclude_execution_id: str | None = None
    ) -> float:
        """The summed cost of the workflow's runs created at or after `since`, leaving
        one run out (one `$group` over the (workflow_id, created_at) index)."""
        match: Document = {"workflow_id": workflow_id, "created_at": _at_or_after(since)}
        if exclude_execution_id is not None:
            match["execution_id"] = {"$ne": exclude_execution_id}
        pipeline: list[Document] = [
            {"$match": match},
            {"$group": {"_id": None, "cost": {"$sum": "$cost"}}},
        ]
        async for row in await self._runs.aggregate(pipeline):
            return float(row.get("cost") or 0.0)
        return 0.0

    async def workflow_usage(self, workflow_id: str, since: datetime) -> list[UsageDay]:
        """The workflow's runs since `since` summed per UTC day.

        Summed here over a narrow projection rather than in a `$group`: a run's
        `usage` is packed into a JSON string when a model name holds a `.` or `$`
        (see `_pack`), which an aggregation cannot read.
        """
        days: dict[date, list[Any]] = {}
        cursor = self._runs.find(
            {"workflow_id": workflow_id, "created_at": _at_or_after(since)},
            {"_id": 0, "created_at": 1, "cost": 1, "usage": 1},
        )
        async for doc in cursor:
            day = doc["created_at"].astimezone(UTC).date()
            usage = _unpack(doc.get("usage")) or {}
            sums = days.setdefault(day, [0, 0, 0, 0.0])
            sums[0] += 1
            sums[1] += int(usage.get("prompt_tokens") or 0)
            sums[2] += int(usage.get("completion_tokens") or 0)
            sums[3] += float(doc.get("cost") or 0.0)
        return [
            UsageDay(date=day, runs=r, prompt_tokens=p, completion_tokens=c, cost=cost)
            for day, (r, p, c, cost) in sorted(days.items())
        ]

    # Concurrency limits (issue 11) ----------------------------------------------------

    # A holder of an admission lock that stalls this long loses it (an admission takes
    # milliseconds); a waiter gives up after _ADMISSION_LOCK_WAIT with a StoreError.
    _ADMISSION_LOCK_TTL = timedelta(seconds=30)
    _ADMISSION_LOCK_WAIT = 20.0

    @contextlib.asynccontextmanager
    async def _admission_lock(self, key: str) -> AsyncIterator[str]:
        """Mutual exclusion across processes: a document `{_id: key}` in `admission_locks`.

        MongoDB has no advisory locks and SecantusDB no multi-document
        transactions, so the count-then-admit of `admit_run` runs under this lock
        (insert it, or take it over once expired; wait with a jittered backoff).
        Yields the holder's token: `_holds_admission_locks` tells whether the lock
        is still held with it (not taken over by another after expiring).
        """
        locks = self._collection("admission_locks")
        token = uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self._ADMISSION_LOCK_WAIT
        pause = 0.002
        while True:
            now = utcnow()
            held = {"owner": token, "expires_at": now + self._ADMISSION_LOCK_TTL}
            try:
                await locks.insert_one({"_id": key, **held})
                break
            except DuplicateKeyError:
                taken = await locks.find_one_and_update(
                    {"_id": key, "expires_at": {"$lt": now}}, {"$set": held}
                )
                if taken is not None:
                    break
            if loop.time() > give_up:
                raise StoreError(f"the admission lock {key!r} stayed taken; try again")
            await asyncio.sleep(pause * (0.5 + random.random()))
            pause = min(pause * 2, 0.05)
        try:
            yield token
        finally:
            await locks.delete_one({"_id": key, "owner": token})

    async def _holds_admission_locks(self, tokens: Mapping[str, str]) -> bool:
        """Whether every lock of `tokens` (key -> token) is still held with its token."""
        locks = self._collection("admission_locks")
        for key, token in tokens.items():
            if await locks.find_one({"_id": key, "owner": token}, {"_id": 1}) is None:
                return False
        return True

    async def admit_run(
        self, execution_id: str, workflow_limit: int | None, global_limit: int | None
    ) -> Admission:
        """Let a queued run take a concurrency slot (see `Store.admit_run`).

        The counts and the write happen under `_admission_lock` of the workflow
        (and the global one when a global limit applies, always in that order);
        the write is a compare-and-set on the run still being queued and not
        admitted, so a run cancelled meanwhile is not admitted.
        """
        doc = await self._runs.find_one(
            {"execution_id": execution_id},
            {
                "_id": 0,
                "workflow_id": 1,
                "status": 1,
                "admitted": 1,
                "created_at": 1,
                "queued_reason": 1,
            },
        )
        if doc is None or doc["status"] != RunStatus.QUEUED.value:
            return Admission(admitted=False)
        if doc.get("admitted"):
            return Admission(admitted=True)
        workflow_id: str = doc["workflow_id"]
        keys = [f"workflow:{workflow_id}", *(["global"] if global_limit is not None else [])]
        async with contextlib.AsyncExitStack() as stack:
            tokens = {
                key: await stack.enter_async_context(self._admission_lock(key)) for key in keys
            }
            holding: Document = {"status": {"$in": _UNFINISHED}, "admitted": True}
            workflow_active = global_active = 0
            blocked: Literal["workflow", "global", "order"] | None = None
            if workflow_limit is not None:
                workflow_active = await self._runs.count_documents(
                    {**holding, "workflow_id": workflow_id}
                )
                if workflow_active >= workflow_limit:
                    blocked = "workflow"
            if global_limit is not None and blocked is None:
                global_active = await self._runs.count_documents(holding)
                if global_active >= global_limit:
                    blocked = "global"
            if blocked is None:
                created_at = doc["created_at"]
                older = await self._runs.find_one(
                    {
                        **_WAITING,
                        "workflow_id": workflow_id,
                        "$or": [
                            {"created_at": {"$lt": created_at}},
                            {"created_at": created_at, "execution_id": {"$lt": execution_id}},
                        ],
                    },
                    {"_id": 0, "execution_id": 1},
                )
                if older is not None:
                    blocked = "order"
            if blocked is not None:
                return Admission(
                    admitted=False,
                    blocked_by=blocked,
                    workflow_active=workflow_active,
                    global_active=global_active,
                )
            result = await self._runs.update_one(
                {"execution_id": execution_id, **_WAITING},
                {"$set": {"admitted": True, "queued_reason": None}},
            )
            # Fencing: a holder stalled past the TTL may have lost a lock before its
            # write, and another admitted on counts without this run. Still holding
            # every lock after the write proves nobody did (a lock taken over never
            # returns to this token); otherwise re-check under the locks.
            fenced = bool(result.modified_count) and not await self._holds_admission_locks(tokens)
        if fenced:
            return await self._recheck_admission(
                execution_id, workflow_id, keys, workflow_limit, global_limit, doc
            )
        if not result.modified_count:
            # Cancelled, started or admitted between the first read and the write.
            again = await self._runs.find_one(
                {"execution_id": execution_id}, {"_id": 0, "admitted": 1, "status": 1}
            )
            queued = again is not None and again["status"] == RunStatus.QUEUED.value
            return Admission(admitted=bool(queued and again and again.get("admitted")))
        return Admission(
            admitted=True,
            workflow_active=workflow_active + 1 if workflow_limit is not None else 0,
            global_active=global_active + 1 if global_limit is not None else 0,
        )

    async def _recheck_admission(
        self,
        execution_id: str,
        workflow_id: str,
        keys: Sequence[str],
        workflow_limit: int | None,
        global_limit: int | None,
        before: Document,
    ) -> Admission:
        """Re-count after an admission whose lock was taken over; undo it when over a limit.

        Under the locks again, so every holder that counted without this run has
        written by now (or, itself stalled, re-checks too). Any later holder counts
        this run. Two stalled holders may both undo: a run waits for its next wake
        rather than exceed a limit.
        """
        async with contextlib.AsyncExitStack() as stack:
            for key in keys:
                await stack.enter_async_context(self._admission_lock(key))
            holding: Document = {"status": {"$in": _UNFINISHED}, "admitted": True}
            workflow_active = global_active = 0
            over: Literal["workflow", "global"] | None = None
            if workflow_limit is not None:
                workflow_active = await self._runs.count_documents(
                    {**holding, "workflow_id": workflow_id}
                )
                if workflow_active > workflow_limit:
                    over = "workflow"
            if global_limit is not None:
                global_active = await self._runs.count_documents(holding)
                if over is None and global_active > global_limit:
                    over = "global"
            if over is None:
                return Admission(
                    admitted=True, workflow_active=workflow_active, global_active=global_active
                )
            undone = await self._runs.update_one(
                {"execution_id": execution_id, "status": RunStatus.QUEUED.value, "admitted": True},
                {"$set": {"admitted": False, "queued_reason": before.get("queued_reason")}},
            )
        if not undone.modified_count:
            # Started (or finished) meanwhile on the admission: it holds its slot.
            return Admission(
                admitted=True, workflow_active=workflow_active, global_active=global_active
            )
        return Admission(
            admitted=False,
            blocked_by=over,
            workflow_active=workflow_active - 1 if workflow_limit is not None else 0,
            global_active=global_active - 1 if global_limit is not None else 0,
        )

    async def find_waiting_runs(self, workflow_id: str | None, limit: int) -> list[str]:
        """Queued runs waiting for a slot, oldest first; of one workflow or of all."""
        selector: Document = dict(_WAITING)
        if workflow_id is not None:
            selector["workflow_id"] = workflow_id
        cursor = (
            self._runs.find(selector, {"_id": 0, "execution_id": 1})
            .sort([("created_at", ASCENDING), ("execution_id", ASCENDING)])
            .limit(limit)
        )
        return [doc["execution_id"] async for doc in cursor]

    async def find_waiting_heads(self, now: datetime, limit: int) -> list[str]:
        """Per workflow, its oldest waiting run when it was refused before and is not held.

        Waiting runs are few (the unfinished ones of limited workflows), so they are
        read in order and the first of each workflow kept here, not in a pipeline.
        """
        cursor = self._runs.find(
            _WAITING,
            {
                "_id": 0,
                "execution_id": 1,
                "workflow_id": 1,
                "queued_reason": 1,
                "lease_owner": 1,
                "lease_expires_at": 1,
            },
        ).sort([("created_at", ASCENDING), ("execution_id", ASCENDING)])
        seen: set[str] = set()
        heads: list[str] = []
        async for doc in cursor:
            if doc["workflow_id"] in seen:
                continue
            seen.add(doc["workflow_id"])
            lease = doc.get("lease_expires_at")
            free = doc.get("lease_owner") is None or lease is None or lease < now
            if doc.get("queued_reason") is not None and free:
                heads.append(doc["execution_id"])
                if len(heads) >= limit:
                    break
        return heads

    # Retention and versions (issue 11) ------------------------------------------------
    # The queries live in mongo_retention (imported here: it builds on this module).
    async def delete_run(self, execution_id: str) -> bool:
        """Delete a finished run with its events; False: unknown or unfinished."""
        from ductwork.store import mongo_retention

        return bool(await mongo_retention.delete_runs(self._runs, self._events, [execution_id]))

    async def prune_runs(self, plan: PrunePlan, limit: int) -> int:
        """Delete up to `limit` finished runs `plan` lets go (run documents first); how many."""
        from ductwork.store import mongo_retention

        return await mongo_retention.prune_runs(self._runs, self._events, plan, limit)

    async def count_prunable_runs(self, plan: PrunePlan) -> int:
        """How many runs `prune_runs` would delete now."""
        from ductwork.store import mongo_retention

        return await mongo_retention.count_prunable_runs(self._runs, plan)

    async def list_workflow_versions(
        self, workflow_id: str, limit: int = 100, offset: int = 0
    ) -> list[WorkflowVersionInfo]:
        """A workflow's saved versions, newest first (empty for an unknown workflow)."""
        from ductwork.store import mongo_retention

        return await mongo_retention.list_workflow_versions(
            self._versions, workflow_id, limit, offset, _unpack
        )
