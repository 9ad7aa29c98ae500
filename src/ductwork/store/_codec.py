"""Encoding shared by the stores, so every store keeps exactly the same data.

Node outputs, event data, run variables and results are JSON documents. Each store
turns them into JSON the same way (orjson, with a few extra types), so a value
reads back identically whichever store holds it: datetimes inside an output come
back as ISO strings everywhere, tuples as lists, integer dict keys as strings.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
from pydantic import BaseModel

from ductwork.models import NodeStatus, Run, RunStatus, WorkflowDefinition
from ductwork.store.base import ResumeOutcome

_OPTIONS = orjson.OPT_NON_STR_KEYS
_SCALARS = (str, int, float, bool, type(None))

FINISHED_RUN_STATUSES: tuple[str, ...] = tuple(s.value for s in RunStatus if s.finished)

QUEUED_GRACE = timedelta(seconds=2)
"""How long a queued, unleased run may wait for the queue before the sweep re-enqueues it.

`find_runs_to_resume` has no argument for it: a freshly created run is enqueued
right after it is stored, so only runs the queue lost (a crash between insert and
enqueue, a dropped message) are still unleased and queued after this long.
"""

RUN_FIELDS = frozenset(
    {
        "status",
        "result",
        "error",
        "start_time",
        "end_time",
        "wake_at",
        "cancel_requested",
        "redrives",
        "dead_letter",
        "error_workflow_pending",
        "usage",
        "cost",
        "queued_reason",
        "admitted",
        "definition",
        "workflow_version",
        "lease_owner",
        "lease_expires_at",
    }
)
"""Run columns a `Checkpoint.run_fields` may set."""

LEASE_FIELDS = frozenset({"lease_owner", "lease_expires_at"})
"""Run fields a checkpoint may only clear (to None): the run's terminal commit gives the
lease up with it, instead of one more write (`Store.release_lease`). Taking or
extending a lease is `acquire_lease`'s and `renew_lease`'s alone."""


def _default(value: Any) -> Any:
    """Types orjson does not know but node outputs plausibly contain."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps_bytes(value: Any) -> bytes:
    """Encode a value as UTF-8 JSON."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS)
    except orjson.JSONEncodeError:
        # orjson refuses integers beyond 64 bits, which Python (and JSON) allow.
        return json.dumps(value, default=_default, ensure_ascii=False).encode()


def dumps(value: Any) -> str:
    """Encode a value as a JSON string (SQLAlchemy's `json_serializer`)."""
    return dumps_bytes(value).decode()


def loads(text: str | bytes | float) -> Any:
    """Decode JSON (SQLAlchemy's `json_deserializer`).

    SQLite gives a column declared JSON numeric affinity, so a stored `0` or
    `1.5` comes back as a number rather than as JSON text.
    """
    if isinstance(text, (int, float)):
        return text
    return orjson.loads(text)


def to_jsonable(value: Any) -> Any:
    """The value as plain JSON data: what reading it back from any store yields."""
    if type(value) in _SCALARS:
        return value
    return orjson.loads(dumps_bytes(value))


KNOWN_RUN_FIELDS = ("definition", "variables", "trigger")
"""What `acquire_lease(..., known=run)` leaves unread: the large fields, written when
the run is created and changed afterwards only together with an event (a retry with
the current definition logs one), so only while `last_seq` is unchanged."""


def adopt_known(known: Run | None, fields: Mapping[Any, Any]) -> Run | None:
    """The leased run from its stored `fields` (everything but KNOWN_RUN_FIELDS, node
    states and events) and `known`, the run as its creator holds it; None when they
    may differ (the caller then reads the run whole).

    Nothing has written to the run since `known` when its `last_seq` is the same and
    `known` has no node states: every write of node states or of a known field comes
    with an event (the first drive's `run_started`, a retry's log line), while the
    row's other columns (cancel flag, admission, lease, redrives) are in `fields`.
    """
    if known is None or known.node_states or fields.get("last_seq") != known.last_seq:
        return None
    data = dict(fields)
    for key in KNOWN_RUN_FIELDS:
        data[key] = getattr(known, key)
    data["node_states"] = {}
    data["events"] = []
    return Run.model_validate(data)


def run_field_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check a checkpoint's run fields and bring them into storable form.

    Raises ValueError naming the first field a checkpoint may not set.
    """
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if key not in RUN_FIELDS:
            raise ValueError(f"checkpoint cannot set run field {key!r}")
        if key in LEASE_FIELDS and value is not None:
            raise ValueError(f"a checkpoint can only clear {key!r}, not set it")
        if key == "status":
            value = RunStatus(value).value
        elif key == "definition":
            if not isinstance(value, WorkflowDefinition):
                value = WorkflowDefinition.model_validate(value)
            value = value.dump()
        elif key in ("workflow_version", "redrives"):
            value = int(value)
        elif key in ("cancel_requested", "dead_letter", "error_workflow_pending"):
            value = bool(value)
        out[key] = value
    return out


def find_nul(value: Any, path: str) -> str | None:
    """Where the first NUL character (U+0000) in a JSON value is, e.g. `output.items[2]`.

    Looks in keys and strings; None when there is none. Walks iteratively, so
    deep values cannot exhaust the stack.
    """
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return where
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if isinstance(key, str) and "\x00" in key:
                    return f"{where} (a key)"
                stack.append((child, f"{where}.{key}"))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{where}[{index}]") for index, child in enumerate(item))
    return None


def prefix_end(prefix: str) -> str | None:
    """The least string above every string that starts with `prefix`; None when there is none.

    In code point order, which is what SQLite (BINARY), PostgreSQL (COLLATE "C") and
    MongoDB (simple collation) compare strings by: `prefix <= key < prefix_end(prefix)`
    holds exactly for the keys starting with `prefix`, whatever characters it has.
    """
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:  # surrogates are not characters a database can hold
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


def resume_outcome(
    status: str, meta: Mapping[str, Any], wake_at: datetime | None, now: datetime
) -> ResumeOutcome:
    """What `Store.resume_node` does with a node in this state (the one rule of every store)."""
    if meta.get("resumed") is True:
        return "used"
    if status != NodeStatus.WAITING.value or meta.get("resumable") is not True:
        return "not_waiting"
    if wake_at is not None and aware(wake_at) <= aware(now):
        return "not_waiting"  # timed out: the timeout path owns the node now
    return "resumed"


def aware(value: datetime) -> datetime:
    """A datetime with a time zone; naive ones are UTC by convention throughout ductwork."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def declares_node(definition: Any, node_id: str) -> bool:
    """Whether a stored (dumped) definition has a node with this id."""
    nodes = definition.get("nodes") if isinstance(definition, Mapping) else None
    return isinstance(nodes, list) and any(
        isinstance(node, Mapping) and node.get("id") == node_id for node in nodes
    )
