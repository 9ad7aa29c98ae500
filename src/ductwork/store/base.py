"""The `Store` port: the source of truth for workflows and runs.

Every adapter (SQLite/PostgreSQL in `sql.py`, MongoDB in `mongo.py`) passes the
same contract tests (`tests/test_store_contract.py`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ductwork.models import (
    Checkpoint,
    Event,
    Run,
    RunStatus,
    RunSummary,
    Workflow,
    WorkflowDefinition,
)
from ductwork.retention import PrunePlan
from ductwork.versions import WorkflowVersionInfo

if TYPE_CHECKING:
    from ductwork.security.models import AuditEntry
    from ductwork.store.security import SecurityStore
    from ductwork.usage import UsageDay


class StoreError(Exception):
    """A store operation could not be carried out."""


class LeaseLost(StoreError):
    """A fenced write was refused: the writer no longer holds the run's lease."""


class UnstorableValue(StoreError):
    """The checkpoint holds a value this store cannot hold; nothing of it was written.

    PostgreSQL refuses a NUL character (U+0000) inside a JSON string; MongoDB a
    document past its 16 MB limit. The message says what, and where when known
    (run, node, field).
    """


class PartialCheckpoint(StoreError):
    """`checkpoint_many` applied some runs of the batch but not those in `failures`.

    `failures` maps each run that was not applied to why: LeaseLost,
    UnstorableValue, or the error that stopped the store before it got to the
    run. Every run of the batch not in `failures` was applied in full.
    """

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        described = "; ".join(f"{eid}: {error}" for eid, error in failures.items())
        super().__init__(f"checkpoints of {len(failures)} run(s) were not applied: {described}")
        self.failures: dict[str, BaseException] = dict(failures)


class DuplicateRun(StoreError):
    """A run of the same workflow with this idempotency key exists already (see `existing`)."""

    def __init__(self, existing: Run) -> None:
        super().__init__(f"run {existing.execution_id} has this idempotency key already")
        self.existing = existing


class TriggerConflict(StoreError):
    """Another workflow serves this webhook path already; nothing was written."""

    def __init__(self, path: str, workflow_id: str) -> None:
        super().__init__(f"webhook path {path!r} is served by workflow {workflow_id} already")
        self.path = path
        self.workflow_id = workflow_id


ResumeOutcome = Literal["resumed", "used", "not_waiting", "not_found"]
"""What `Store.resume_node` did: resumed it; it was resumed before (the link was
used); the node is not parked for a person (never was, ran on, or timed out); no
such run or node."""


@dataclass(frozen=True, slots=True)
class Admission:
    """What `Store.admit_run` decided for one queued run (see `ductwork.engine.admission`)."""

    admitted: bool
    """True: the run holds a slot now (or held one already) and may start."""
    blocked_by: Literal["workflow", "global", "order"] | None = None
    """Why it may not start: its workflow's limit is full, the global one is, or an
    older run of its workflow waits for a slot first (FIFO). None when admitted."""
    workflow_active: int = 0
    """Admitted unfinished runs of the workflow, this one included when admitted
    (counted only when a workflow limit was given)."""
    global_active: int = 0
    """Admitted unfinished runs of every workflow, likewise (only with a global limit)."""


@dataclass(frozen=True, slots=True)
class RunQuery:
    """Which runs `Store.find_runs` lists: every filter that is set must match.

    The one policy every store implements: newest first (`created_at`, then
    `execution_id`, both descending), so paging with limit/offset is stable.
    """

    workflow_id: str | None = None
    status: RunStatus | None = None
    dead_letter: bool | None = None
    """True: only runs the engine gave up on; False: only the others."""
    trigger_type: str | None = None
    """The `type` of the run's trigger; runs without a trigger never match."""
    error_workflow_pending: bool | None = None
    """True: only failed runs whose error workflow has not been started yet."""
    parent_execution_id: str | None = None
    """Only the child runs that `sub-workflow` nodes of this run started."""


@dataclass(frozen=True, slots=True)
class RunCursor:
    """Where a page of `Store.find_runs` ends: the last run's (`created_at`, `execution_id`).

    The next page holds the runs after it in the runs' order (both descending), so
    runs created meanwhile never shift a page the way an offset does, and the store
    reads the page off its (..., created_at) index instead of skipping rows.
    """

    created_at: datetime
    execution_id: str

    @classmethod
    def after(cls, run: Run) -> RunCursor:
        """The cursor of the page that ends with `run`."""
        return cls(run.created_at, run.execution_id)

    def token(self) -> str:
        """The opaque text a client hands back (`?after=`): URL-safe, no padding."""
        raw = f"{self.created_at.isoformat()}|{self.execution_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> RunCursor:
        """The cursor a `token()` wrote; ValueError for anything else."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            when, execution_id = raw.split("|", 1)
            created_at = datetime.fromisoformat(when)
            if created_at.tzinfo is None:
                raise ValueError("no time zone")
            # In UTC as the stores compare it; a date at the calendar's edge overflows.
            created_at = created_at.astimezone(UTC)
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
            raise ValueError("not a cursor this server wrote") from None
        # An id as a path would hold it (no control characters: PostgreSQL refuses NUL).
        if not execution_id or len(execution_id) > 200 or not execution_id.isprintable():
            raise ValueError("not a cursor this server wrote")
        return cls(created_at, execution_id)


class Store(Protocol):
    """Persistence for workflows, runs, node states and run events."""

    @property
    def security(self) -> SecurityStore:
        """Users, API keys, sessions, credentials and the audit log, in the same database."""

    async def start(self) -> None:
        """Connect and create or migrate the schema (idempotent)."""

    async def close(self) -> None:
        """Release connections."""

    # Workflows ---------------------------------------------------------------
    async def create_workflow(self, workflow: Workflow) -> Workflow:
        """Insert a new workflow (version 1) with its trigger index rows.

        Raises TriggerConflict (nothing written) when another workflow serves one of
        its webhook paths. The rows are `triggers.spec.trigger_index`'s.
        """

    async def get_workflow(self, workflow_id: str) -> Workflow | None:
        """The current version of a workflow, or None."""

    async def get_workflow_version(self, workflow_id: str, version: int) -> Workflow | None:
        """Version `version` of a workflow as it was saved, or None."""

    async def list_workflows(
        self, limit: int = 100, offset: int = 0, *, q: str | None = None
    ) -> list[Workflow]:
        """Workflows, newest first; with `q`, only those whose name contains `q`.

        `q` matches case-insensitively and literally: `%`, `_`, `.` and the like are
        plain characters, not patterns. An empty `q` matches every workflow.
        """

    async def update_workflow(
        self, workflow_id: str, definition: WorkflowDefinition, updated_at: datetime
    ) -> Workflow | None:
        """Replace the definition and bump the version; None when the id is unknown.

        Its trigger index rows are replaced in the same write; TriggerConflict
        (nothing written) when another workflow serves one of its webhook paths.
        """

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow and its trigger rows (its runs stay readable); False when unknown."""

    async def find_hook(self, path: str) -> Workflow | None:
        """The workflow serving webhook `path` (normalized, see `normalize_hook_path`)."""

    async def list_scheduled_workflows(self) -> list[Workflow]:
        """Every workflow that declares a schedule trigger (paused ones included)."""

    # Runs ----------------------------------------------------------------------
    async def create_run(self, run: Run, *, audit: AuditEntry | None = None) -> Run:
        """Insert a run; raises DuplicateRun when its workflow has a run with its idempotency key.

        Keys are scoped per workflow: the same key on another workflow is another run.
        `audit`: an entry of this store's audit log (`security`) to append with the run
        (its `run.start`), so starting a run is one commit, not two. SQL stores insert
        both in one transaction (neither without the other; a DuplicateRun writes
        neither). MongoDB has no multi-document transaction: it appends the entry
        right after the run and, the run being stored, only logs a failure to append it.

        A run given with `lease_owner` and `lease_expires_at` is stored leased to that
        owner, as if it had taken the lease with `acquire_lease` right after (its
        creator drives it at once: `Executor.lease_new_run`): its fenced writes pass,
        nobody else takes it before the lease expires, and afterwards it is offered
        by `find_runs_to_resume` like any run whose holder stopped.
        """

    async def get_run(
        self, execution_id: str, *, with_events: bool = True, with_node_states: bool = True
    ) -> Run | None:
        """A run with all node states and its events, in order (each unless told not to:
        a summary of a large run reads neither)."""

    async def find_runs(
        self,
        query: RunQuery = RunQuery(),
        *,
        limit: int = 100,
        offset: int = 0,
        with_events: bool = False,
        after: RunCursor | None = None,
    ) -> list[Run]:
        """Runs matching `query`, newest first, with node states (and events when asked).

        With `after`, only the runs that come after that cursor in this order (keyset
        paging: one index range, however deep the page); `offset` then skips among them.
        """

    async def latest_runs(self, workflow_ids: Sequence[str]) -> dict[str, RunSummary]:
        """The newest run of each stored workflow of `workflow_ids`, in one query.

        Keyed by workflow id; a workflow without runs, or an id that is not a stored
        workflow, is left out. "Newest" is `find_runs`'s order.
        """

    async def checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, *, owner: str | None = None
    ) -> None:
        """Apply node states (upsert per node), append events, set run fields: one commit.

        Node states of different nodes written concurrently never overwrite each
        other; events are appended and never rewritten. With `owner` the write is
        fenced: it is refused (LeaseLost, nothing written) unless `owner` holds
        the run's lease, so a worker that lost its lease cannot write over the one
        that took the run over. A value the store cannot hold raises
        UnstorableValue, nothing written.
        """

    async def checkpoint_many(
        self, items: Sequence[tuple[str, Checkpoint]], *, owner: str | None = None
    ) -> None:
        """Checkpoints of several runs at once (group commit), fenced like `checkpoint`.

        Each run's checkpoint is applied in full or not at all. Raises
        PartialCheckpoint when some runs were applied and others (its `failures`)
        were not; any other exception means NOTHING of the batch was applied, so
        the caller may retry every run. SQL stores write the batch in one
        transaction (all or nothing, never PartialCheckpoint); MongoDB applies
        run by run and reports exactly the runs that failed.
        """

    async def latest_idempotency_key(self, workflow_id: str, prefix: str) -> str | None:
        """The greatest idempotency key starting with `prefix` among the workflow's runs.

        Schedules key their runs `schedule:{key}:{slot}` with sortable UTC slot
        times, so this is the last slot that fired (one indexed read).
        """

    async def resume_node(
        self, execution_id: str, node_id: str, payload: Any, now: datetime
    ) -> ResumeOutcome:
        """Hand a parked `wait` node its resume payload, once (compare-and-set).

        Only when the node is `waiting`, carries `meta.resumable` and no
        `meta.resumed` yet, and its timeout (`wake_at`) has not come: then, in one
        write, `meta.resumed = True` and `meta.resume_payload = payload` are set on
        the node and the run's `wake_at` becomes `now` (the sweep or the caller's
        enqueue then drives it). Not fenced by the lease: a driver running other
        branches of the run meanwhile does not write this node again.
        """

    async def list_events(
        self, execution_id: str, after_seq: int = 0, *, limit: int | None = None
    ) -> list[Event]:
        """Events of a run with seq > after_seq, in order; the first `limit` of them when
        given (a page: the next one starts after the last seq returned)."""

    # Run control across processes -----------------------------------------------
    async def request_cancel(self, execution_id: str) -> Run | None:
        """Set the cancel flag; a queued run nobody holds becomes cancelled at once."""

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

        Taking over another owner's expired lease also adds one to the run's
        `redrives`, in the same write; a released lease or our own does not.
        Returns the run (node states, without events) on success, None when another
        owner holds a live lease or the run is finished.

        `known`: the run as this process created it (`create_run`'s answer). The
        store may then read back only what others can have changed since (the run
        row's small columns) and take the rest from `known`, when the stored run has
        not moved on (`_codec.adopt_known`); the answer is the same either way.
        """

    async def renew_lease(self, execution_id: str, owner: str, expires_at: datetime) -> bool:
        """Extend our lease; False when we lost it."""

    async def release_lease(self, execution_id: str, owner: str) -> None:
        """Give the lease up (no-op when not ours)."""

    async def is_cancel_requested(self, execution_id: str) -> bool:
        """Whether someone asked this run to stop."""

    async def find_runs_to_resume(self, now: datetime, limit: int = 100) -> list[str]:
        """Ids of runs that need a worker: expired leases of unfinished runs,
        waiting runs whose wake time has come, queued runs nobody holds."""

    # Sub-workflows (issue 11) ---------------------------------------------------------
    # Usage and budgets (issue 11) -----------------------------------------------------
    async def workflow_cost_since(
        self, workflow_id: str, since: datetime, *, exclude_execution_id: str | None = None
    ) -> float:
        """The summed `Run.cost` of the workflow's runs created at or after `since`
        (0.0 when none), leaving `exclude_execution_id` out: a run's daily budget
        check adds its own spend, which it knows better than the store."""

    async def workflow_usage(self, workflow_id: str, since: datetime) -> list[UsageDay]:
        """The workflow's runs created at or after `since`, summed per UTC day of
        `created_at`, oldest day first; days without runs are left out. Tokens come
        from each run's `usage` (0 for runs without one), cost from `Run.cost`."""

    # Concurrency limits (issue 11) ----------------------------------------------------
    async def admit_run(
        self, execution_id: str, workflow_limit: int | None, global_limit: int | None
    ) -> Admission:
        """Let a queued run take a concurrency slot, atomically across processes.

        A slot is held by every run with `admitted` set that has not finished.
        The run is admitted (in the same atomic step: `admitted = True`,
        `queued_reason = None`) when its workflow has fewer than `workflow_limit`
        such runs (None: no workflow limit), all workflows together fewer than
        `global_limit` (None: none), and no older queued run of its workflow
        (by `created_at`, then `execution_id`) that is not admitted and not asked
        to cancel waits before it (FIFO). A run admitted already is answered
        admitted without counting; a run that is not queued (or unknown) is
        answered not admitted, `blocked_by` None, and left alone. Concurrent calls
        from any number of processes never admit more runs than a limit allows.
        """

    async def find_waiting_runs(self, workflow_id: str | None, limit: int) -> list[str]:
        """Ids of queued runs that are not admitted nor asked to cancel, oldest first
        (`created_at`, then `execution_id`); of one workflow, or of all with None."""

    async def find_waiting_heads(self, now: datetime, limit: int) -> list[str]:
        """The sweep's offer of runs refused a slot: per workflow, its oldest waiting run
        (as `find_waiting_runs` orders them) when it has a `queued_reason` and its
        lease is free at `now`; oldest first. `find_runs_to_resume` leaves queued
        runs with a `queued_reason` out, so a long line cannot crowd it."""

    # Retention and versions (issue 11) ------------------------------------------------
    async def delete_run(self, execution_id: str) -> bool:
        """Delete a FINISHED run with its node states and events, together.

        False (nothing deleted) when the run is unknown or not finished; the status
        is checked in the same write that deletes, so a run retried meanwhile stays.
        """

    async def prune_runs(self, plan: PrunePlan, limit: int) -> int:
        """Delete up to `limit` finished runs that `plan` lets go; how many were deleted.

        Each run goes with its node states and events (SQL: one transaction for the
        batch; MongoDB: events first, then the run documents, so an interrupted
        prune leaves runs the next one finishes, never events without a run).
        Unfinished runs are never deleted. Callers repeat until fewer than `limit`
        come back, yielding between batches (`ductwork.pruning`).
        """

    async def count_prunable_runs(self, plan: PrunePlan) -> int:
        """How many runs `prune_runs` would delete now (the CLI's `prune --dry-run`)."""

    async def list_workflow_versions(
        self, workflow_id: str, limit: int = 100, offset: int = 0
    ) -> list[WorkflowVersionInfo]:
        """A workflow's saved versions, newest first (empty for an unknown workflow)."""
