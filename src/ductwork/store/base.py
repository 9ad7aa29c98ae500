"""The `Store` port: the source of truth for workflows and runs.

Every adapter (SQLite/PostgreSQL in `sql.py`, MongoDB in `mongo.py`) passes the
same contract tests (`tests/test_store_contract.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ductwork.models import (
    Checkpoint,
    Event,
    Run,
    RunStatus,
    RunSummary,
    Workflow,
    WorkflowDefinition,
)

if TYPE_CHECKING:
    from ductwork.store.security import SecurityStore


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
        """Insert a new workflow (version 1)."""

    async def get_workflow(self, workflow_id: str) -> Workflow | None:
        """The current version of a workflow, or None."""

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
        """Replace the definition and bump the version; None when the id is unknown."""

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow (its runs stay readable); False when the id is unknown."""

    # Runs ----------------------------------------------------------------------
    async def create_run(self, run: Run) -> Run:
        """Insert a run; raises DuplicateRun when its workflow has a run with its idempotency key.

        Keys are scoped per workflow: the same key on another workflow is another run.
        """

    async def get_run(self, execution_id: str, *, with_events: bool = True) -> Run | None:
        """A run with all node states (and its events, in order, when asked)."""

    async def find_runs(
        self,
        query: RunQuery = RunQuery(),
        *,
        limit: int = 100,
        offset: int = 0,
        with_events: bool = False,
    ) -> list[Run]:
        """Runs matching `query`, newest first, with node states (and events when asked)."""

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

    async def list_events(self, execution_id: str, after_seq: int = 0) -> list[Event]:
        """Events of a run with seq > after_seq, in order."""

    # Run control across processes -----------------------------------------------
    async def request_cancel(self, execution_id: str) -> Run | None:
        """Set the cancel flag; a queued run nobody holds becomes cancelled at once."""

    async def acquire_lease(
        self, execution_id: str, owner: str, expires_at: datetime, now: datetime
    ) -> Run | None:
        """Take the run's lease when free, expired or already ours (compare-and-set).

        Taking over another owner's expired lease also adds one to the run's
        `redrives`, in the same write; a released lease or our own does not.
        Returns the run (node states, without events) on success, None when another
        owner holds a live lease or the run is finished.
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
