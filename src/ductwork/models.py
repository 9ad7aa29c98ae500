"""The data ductwork stores and serves: workflows, runs, node states and events.

Shapes follow SEED.md (the contract clients were written against) with the
additions DESIGN.md names. Everything here is plain data: no I/O.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from random import random
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def new_workflow_id() -> str:
    """A 24-hex-digit id shaped like a MongoDB ObjectId (time first, so ids sort by age)."""
    return f"{int(time.time()):08x}{os.urandom(8).hex()}"


def new_execution_id() -> str:
    """A random UUID, as the seed's `execution_id` is."""
    return str(uuid.uuid4())


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_RUN


_FINISHED_RUN = frozenset({RunStatus.SUCCESS, RunStatus.ERROR, RunStatus.CANCELLED})


class NodeStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    WAITING = "waiting"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def settled(self) -> bool:
        """True once the node will not run again in this run (successors may decide)."""
        return self in _SETTLED_NODE


_SETTLED_NODE = frozenset(
    {NodeStatus.COMPLETED, NodeStatus.FAILED, NodeStatus.SKIPPED, NodeStatus.CANCELLED}
)

OnError = Literal["fail", "continue", "branch"]


class RetryPolicy(BaseModel):
    """How often a node is tried when it fails with a retryable error."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(default=1, ge=1, le=100)
    backoff_seconds: float = Field(default=1.0, ge=0, le=3600)
    backoff_factor: float = Field(default=2.0, ge=1, le=10)
    max_backoff_seconds: float = Field(default=300.0, ge=0)
    jitter: float = Field(default=0.5, ge=0, le=1)
    """Share of each delay drawn at random: 0.5 ("equal jitter") by default, 1 full, 0 none."""

    def delay_before(self, attempt: int, random_fraction: Callable[[], float] = random) -> float:
        """Seconds to wait before `attempt` (2 is the first retry), jittered.

        The exponential delay, capped at `max_backoff_seconds`, is shortened by a
        random part of up to `jitter` of itself: with the default 0.5 a delay `d`
        becomes uniform in [d/2, d]. Runs that failed together (one upstream
        outage) then retry spread over half the interval instead of in lockstep,
        while each still waits at least half of what the workflow asked for, so a
        backoff set for a rate limit is never turned into an immediate retry (as
        full jitter, `jitter: 1`, may). Jitter only ever shortens a delay, so the
        configured values stay upper bounds and `max_backoff_seconds` a hard cap.
        `random_fraction` returns a float in [0, 1); tests pass a seeded one.
        """
        delay = min(
            self.backoff_seconds * self.backoff_factor ** max(0, attempt - 2),
            self.max_backoff_seconds,
        )
        return float(delay * (1.0 - self.jitter * random_fraction()))


class Position(BaseModel):
    model_config = ConfigDict(extra="allow")
    # int first: a canvas that sent {"x": 200} gets 200 back, not 200.0.
    x: int | float = 0
    y: int | float = 0


class NodeSpec(BaseModel):
    """One node of a workflow as the builder saved it."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, max_length=200)
    type: str = Field(min_length=1)
    config: dict[str, Any] = Field(default_factory=dict)
    position: Position | None = None
    name: str | None = None
    retry: RetryPolicy | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=86_400)
    on_error: OnError = "fail"
    parent: str | None = Field(default=None, min_length=1, max_length=200)
    """The `loop` node whose body this node belongs to (React Flow's `parentId` is
    accepted too); None: a node of the workflow's top-level graph."""

    @model_validator(mode="before")
    @classmethod
    def _accept_parent_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "parent" not in data and data.get("parentId") is not None:
            data = {**data, "parent": data["parentId"]}
            data.pop("parentId")
        return data


class EdgeSpec(BaseModel):
    """A directed edge. Accepts the seed's `from`/`to` and React Flow's `source`/`target`."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    source: str = Field(alias="from", min_length=1)
    target: str = Field(alias="to", min_length=1)
    branch: str | None = None
    id: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _accept_react_flow(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if "from" not in data and "source" in data:
            data["from"] = data.pop("source")
        if "to" not in data and "target" in data:
            data["to"] = data.pop("target")
        if data.get("branch") is None and data.get("sourceHandle") is not None:
            data["branch"] = str(data["sourceHandle"])
        if isinstance(data.get("branch"), bool):
            data["branch"] = "true" if data["branch"] else "false"
        return data

    def dump(self) -> dict[str, Any]:
        out: dict[str, Any] = {"from": self.source, "to": self.target}
        if self.branch is not None:
            out["branch"] = self.branch
        if self.id is not None:
            out["id"] = self.id
        return out


class RetentionPolicy(BaseModel):
    """How long a workflow's finished runs are kept; unset fields fall back to the
    DUCTWORK_RETENTION_* settings. A run is pruned when either rule says so."""

    # defer_build (here and on Workflow, RunSummary, ValidationIssue): validators are
    # built on first use, not at import: a cold `ductwork run` never uses these.
    model_config = ConfigDict(extra="forbid", defer_build=True)

    days: float | None = Field(default=None, gt=0)
    """Finished runs older than this many days are deleted."""
    runs: int | None = Field(default=None, ge=1)
    """Only this many of the newest finished runs are kept."""


class WorkflowSettings(BaseModel):
    """Per-workflow limits: concurrency, budgets, retention (all optional)."""

    model_config = ConfigDict(extra="forbid")

    max_concurrent_runs: int | None = Field(default=None, ge=1, le=100_000)
    """At most this many runs of the workflow are running or waiting at once, across
    every worker; more wait `queued` (FIFO) with a `queued_reason`."""
    max_cost_per_run: float | None = Field(default=None, ge=0)
    """A run stops with an error before an LLM call that would take its cost past this."""
    max_cost_per_day: float | None = Field(default=None, ge=0)
    """Likewise for the cost of all of the workflow's runs since 00:00 UTC."""
    retention: RetentionPolicy | None = None


class WorkflowDefinition(BaseModel):
    """What a client sends to create or replace a workflow (SEED.md's body, verbatim)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=500)
    nodes: list[NodeSpec] = Field(default_factory=list)
    edges: list[EdgeSpec] = Field(default_factory=list)
    variables: list[Any] | dict[str, Any] = Field(default_factory=list)
    status: str = "active"
    """`active`, or `paused`: schedules and webhooks stop; manual runs still start."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    triggers: list[Any] = Field(default_factory=list)
    """Schedules and webhooks that start runs (`ductwork.triggers.spec`, checked on save)."""
    error_workflow_id: str | None = Field(default=None, min_length=1, max_length=64)
    """A workflow started once for each failed run of this one (not for a run an error
    workflow started: no loops)."""
    settings: WorkflowSettings = Field(default_factory=WorkflowSettings)
    """Concurrency limits, cost budgets and retention of this workflow's runs."""

    def dump(self) -> dict[str, Any]:
        """JSON-ready form, edges in the seed's `from`/`to` spelling."""
        data = self.model_dump(mode="json", exclude={"edges"}, exclude_none=True)
        if not data.get("settings"):
            data.pop("settings", None)
        data["edges"] = [edge.dump() for edge in self.edges]
        return data


class Workflow(BaseModel):
    """A stored workflow: its definition plus identity and version."""

    model_config = ConfigDict(defer_build=True)

    id: str
    version: int = 1
    definition: WorkflowDefinition
    created_at: datetime
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        """The API's shape: the definition's fields plus `id`/`_id`, version and times."""
        data = self.definition.dump()
        data.update(
            id=self.id,
            _id=self.id,
            version=self.version,
            created_at=self.created_at.isoformat(),
            updated_at=self.updated_at.isoformat(),
        )
        return data


class NodeState(BaseModel):
    """Where one node of one run stands (SEED.md's `node_states` entry)."""

    status: NodeStatus = NodeStatus.PENDING
    output: Any = None
    error: str | None = None
    cached: bool = False
    latency_ms: float | None = None
    attempts: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    branch: str | None = None
    wake_at: datetime | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


EventType = Literal[
    "run_started",
    "node_started",
    "node_completed",
    "node_failed",
    "node_skipped",
    "node_retrying",
    "node_cancelled",
    "token",
    "log",
    "run_waiting",
    "node_waiting",
    "run_failed",
    "run_finished",
]


class Event(BaseModel):
    """One step of a run, sequence-numbered per run; logs and errors are read from these."""

    seq: int
    type: EventType
    node_id: str | None = None
    timestamp: datetime
    data: dict[str, Any] = Field(default_factory=dict)


class Run(BaseModel):
    """One execution of a workflow (SEED.md's `workflow_runs` document)."""

    execution_id: str
    workflow_id: str
    workflow_version: int
    status: RunStatus = RunStatus.QUEUED
    definition: WorkflowDefinition
    variables: dict[str, Any] = Field(default_factory=dict)
    node_states: dict[str, NodeState] = Field(default_factory=dict)
    result: Any = None
    error: str | None = None
    created_at: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    wake_at: datetime | None = None
    cancel_requested: bool = False
    idempotency_key: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    last_seq: int = 0
    redrives: int = 0
    """Times a worker took the run over after its holder stopped without letting go
    (the holder's lease expired); counted by `Store.acquire_lease`."""
    dead_letter: bool = False
    """Set when the engine gave up on the run (`RunQuery(dead_letter=True)` lists them)."""
    trigger: dict[str, Any] | None = None
    """What started the run; None for runs stored before triggers were recorded. Always
    an object with a string `type`, kept as it is by a retry: `{"type": "manual"}`,
    `{"type": "schedule", "key", "slot"}` (slot: the ISO time it was due),
    `{"type": "webhook", "path", "method"}`, `{"type": "error", "execution_id",
    "workflow_id"}` (an error workflow started for that failed run)."""
    error_workflow_pending: bool = False
    """Set in the same commit that fails a run whose definition names an
    `error_workflow_id` (an outbox): cleared once that workflow's run exists. The
    sweep starts the error workflow of every run still marked, so a worker dying
    between the two loses nothing."""
    parent_execution_id: str | None = None
    """The run whose `sub-workflow` node started this one (None: a top-level run)."""
    parent_node_id: str | None = None
    """That `sub-workflow` node's id in the parent run (`node[i]` inside a loop)."""
    depth: int = 0
    """Sub-workflow nesting: 0 for a top-level run, the parent's depth + 1 for a child
    (DUCTWORK_MAX_WORKFLOW_DEPTH bounds it)."""
    usage: dict[str, Any] | None = None
    """Token usage and cost so far (`ductwork.usage.RunUsage.dump()`); None: no LLM call."""
    cost: float = 0.0
    """`usage`'s total cost, kept as a column so a workflow's daily spend is one query."""
    queued_reason: str | None = None
    """Why a `queued` run has not started (a concurrency limit is full); None otherwise."""
    admitted: bool = False
    """Whether the run holds one of its workflow's concurrency slots (set when it is let
    in, kept until it finishes)."""
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _trigger_has_a_type(self) -> Run:
        if self.trigger is not None and not isinstance(self.trigger.get("type"), str):
            raise ValueError("a run's trigger needs a string `type`")
        return self


class RunSummary(BaseModel):
    """The few fields of a run a list of workflows shows as its last run."""

    model_config = ConfigDict(defer_build=True)

    execution_id: str
    status: RunStatus
    created_at: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None


class Checkpoint(BaseModel):
    """Changes to one run written in one commit: node states, new events, run fields.

    Allowed keys of `run_fields`: status, result, error, start_time, end_time,
    wake_at, cancel_requested, redrives, dead_letter, error_workflow_pending, usage,
    cost, queued_reason, admitted, (for a retry with the workflow's current
    definition) definition and workflow_version, and lease_owner and
    lease_expires_at set to None only (the terminal commit gives the lease up).
    """

    node_states: dict[str, NodeState] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)
    run_fields: dict[str, Any] = Field(default_factory=dict)
    output_json: dict[str, tuple[Any, bytes]] = Field(
        default_factory=dict, exclude=True, repr=False
    )
    """Optional: node key -> (its state's output, that output as JSON), from the engine's
    size check, so a store need not encode the output again; valid only while the
    state's `output` is that very object (a store checks with `is`)."""

    def __bool__(self) -> bool:
        return bool(self.node_states or self.events or self.run_fields)


class ValidationIssue(BaseModel):
    """One reason a workflow is invalid: which node, which field, why."""

    model_config = ConfigDict(defer_build=True)

    node_id: str | None = None
    field: str | None = None
    message: str
