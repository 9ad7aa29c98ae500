"""The `Store` port: the source of truth for workflows and runs.

Every adapter (SQLite/PostgreSQL in `sql.py`, MongoDB in `mongo.py`) passes the
same contract tests (`tests/test_store_contract.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from ductwork.models import Checkpoint, Event, Run, Workflow, WorkflowDefinition


class StoreError(Exception):
    """A store operation could not be carried out."""


class LeaseLost(StoreError):
    """A fenced write was refused: the writer no longer holds the run's lease."""


class UnstorableValue(StoreError):
    """The checkpoint holds a value this store cannot hold; nothing was written."""


class PartialCheckpoint(StoreError):
    """`checkpoint_many` applied every run of the batch except those in `failures`."""

    def __init__(self, failures: dict[str, BaseException]) -> None:
        super().__init__(f"{len(failures)} checkpoint(s) of the batch were not applied")
        self.failures = failures


class DuplicateRun(StoreError):
    """A run with this idempotency key exists already (see `existing`)."""

    def __init__(self, existing: Run) -> None:
        super().__init__(f"run {existing.execution_id} has this idempotency key already")
        self.existing = existing


class Store(Protocol):
    """Persistence for workflows, runs, node states and run events."""

    async def start(self) -> None:
        """Connect and create or migrate the schema (idempotent)."""

    async def close(self) -> None:
        """Release connections."""

    # Workflows ---------------------------------------------------------------
    async def create_workflow(self, workflow: Workflow) -> Workflow:
        """Insert a new workflow (version 1)."""

    async def get_workflow(self, workflow_id: str) -> Workflow | None:
        """The current version of a workflow, or None."""

    async def list_workflows(self, limit: int = 100, offset: int = 0) -> list[Workflow]:
        """Workflows, newest first."""

    async def update_workflow(
        self, workflow_id: str, definition: WorkflowDefinition, updated_at: datetime
    ) -> Workflow | None:
        """Replace the definition and bump the version; None when the id is unknown."""

    async def delete_workflow(self, workflow_id: str) -> bool:
        """Delete a workflow (its runs stay readable); False when the id is unknown."""

    # Runs ----------------------------------------------------------------------
    async def create_run(self, run: Run) -> Run:
        """Insert a run; raises DuplicateRun when its idempotency key is taken."""

    async def get_run(self, execution_id: str, *, with_events: bool = True) -> Run | None:
        """A run with all node states (and its events, in order, when asked)."""

    async def list_runs(self, workflow_id: str, limit: int = 100, offset: int = 0) -> list[Run]:
        """Runs of a workflow, newest first, with node states and events."""

    async def checkpoint(
        self, execution_id: str, checkpoint: Checkpoint, *, owner: str | None = None
    ) -> None:
        """Apply node states (upsert per node), append events, set run fields: one commit.

        Node states of different nodes written concurrently never overwrite each
        other; events are appended and never rewritten. With `owner` the write is
        fenced: it is refused (LeaseLost, nothing written) unless `owner` holds
        the run's lease, so a worker that lost its lease cannot write over the one
        that took the run over.
        """

    async def checkpoint_many(
        self, items: Sequence[tuple[str, Checkpoint]], *, owner: str | None = None
    ) -> None:
        """Checkpoints of several runs at once (group commit), fenced like `checkpoint`.

        SQL stores write them in one transaction (all or nothing); MongoDB applies
        each run's checkpoint atomically. Raises like `checkpoint` when any fails.
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
