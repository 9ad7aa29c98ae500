"""Error workflows: a failed run starts the workflow its definition names, exactly once.

A workflow's `error_workflow_id` names a workflow to run whenever one of its
runs fails (every way a run ends in `error`: a node failing, a run limit, a dead
letter, an invalid plan, unusable credentials; never a cancelled run). That run
gets the inputs `error_inputs` builds and the trigger `{"type": "error",
"execution_id", "workflow_id"}` naming the failed run.

Delivery is an outbox. The commit that stores the failure also sets the failed
run's `error_workflow_pending` (`engine.executor.failed_run_fields`); then
`ErrorWorkflows.settle` starts the error workflow and clears the flag, appending
a `log` event to the failed run that names the new run. It is called

- at once by the process that failed the run (`Ductwork._advance`), and
- by every sweep for the runs still flagged (`ErrorWorkflows.sweep`): a worker
  killed between the two commits, or a store that failed in between, loses nothing.

Exactly once however many processes settle the same run at the same time: the
error run's idempotency key names the failed run and its failure
(`failure_key`), and a store keeps keys unique per workflow, so every process
but one gets the existing run back. A run that is retried and fails again has
failed anew: its error workflow runs again.

No loops: a run an error workflow started never starts one itself, so an error
workflow that fails (even one that names itself, or A -> B -> A) ends there.
An error workflow deleted in the meantime is not started: the failed run gets a
`log` event saying so and the flag is cleared (no sweep retries it forever). A
paused error workflow still runs: pausing stops a workflow's own schedules and
webhooks, and an error workflow is started by another workflow's failure, as a
manual run is started by a person.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC
from typing import Any, Final, Protocol

from ductwork.models import (
    Checkpoint,
    Event,
    NodeStatus,
    Run,
    RunStatus,
    Workflow,
    utcnow,
)
from ductwork.store.base import RunQuery, Store, StoreError, UnstorableValue

log = logging.getLogger("ductwork.triggers.errors")

SWEEP_BATCH: Final = 100
"""Flagged runs one sweep settles (newest first); the next sweep takes the rest."""

_CLEAR_ATTEMPTS: Final = 3
"""Tries at appending the log event that clears the flag (another process may take the seq)."""


class StartRun(Protocol):
    """Starts a run of a stored workflow and returns it; an existing run with the same
    idempotency key is returned instead of a new one (`Ductwork._start_run`)."""

    async def __call__(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        idempotency_key: str,
        trigger: Mapping[str, Any],
    ) -> Run: ...


def failed_node(run: Run) -> str | None:
    """The node whose failure failed `run`, or None when the run failed as a whole.

    That is the failed node (with `on_error: fail`) the run's error names: the
    executor fails a run with "node {id} failed: ...". Run-level failures (a run
    limit, a dead letter, an invalid plan, unusable credentials) name no node.
    """
    if run.error is None:
        return None
    for node in run.definition.nodes:
        state = run.node_states.get(node.id)
        if (
            state is not None
            and state.status is NodeStatus.FAILED
            and node.on_error == "fail"
            and run.error.startswith(f"node {node.id} failed: ")
        ):
            return node.id
    return None


def error_inputs(run: Run) -> dict[str, Any]:
    """The inputs of the error workflow's run for the failed `run`."""
    return {
        "execution_id": run.execution_id,
        "workflow_id": run.workflow_id,
        "workflow_name": run.definition.name,
        "failed_node": failed_node(run),
        "error": run.error,
        "trigger": run.trigger,
    }


def failure_key(run: Run) -> str:
    """The error run's idempotency key: one per failure of `run`.

    The failed run's id and the time it failed: every process reads the same
    `end_time` from the store until a retry clears it, and a retried run that
    fails again gets a new one.
    """
    if run.end_time is None:
        return f"error:{run.execution_id}"
    ended = run.end_time.astimezone(UTC) if run.end_time.tzinfo else run.end_time
    return f"error:{run.execution_id}:{ended.strftime('%Y%m%dT%H%M%S.%fZ')}"


def error_trigger(run: Run) -> dict[str, Any]:
    """The trigger recorded on the error workflow's run."""
    return {"type": "error", "execution_id": run.execution_id, "workflow_id": run.workflow_id}


class ErrorWorkflows:
    """Starts the error workflows of failed runs (see the module docstring)."""

    def __init__(self, store: Store, start_run: StartRun) -> None:
        self.store = store
        self.start_run = start_run

    async def after_failure(self, execution_id: str) -> None:
        """The fast path, right after this process failed the run: settle it now.

        Never raises: whatever goes wrong, the flag stays set and the sweep
        settles the run later.
        """
        try:
            run = await self.store.get_run(execution_id, with_events=False)
            if run is not None and run.error_workflow_pending:
                await self.settle(run)
        except Exception:
            log.exception(
                "starting the error workflow of run %s failed; the sweep tries again",
                execution_id,
            )

    async def sweep(self, limit: int = SWEEP_BATCH) -> list[str]:
        """Settle runs still flagged (their failing process died first); returns the
        ids of the error runs started. One run that cannot be settled does not stop
        the others; it stays flagged for the next sweep."""
        started = []
        # Read once per batch: a backlog's failed runs mostly name the same few workflows.
        workflows: dict[str, Workflow | None] = {}
        for run in await self.store.find_runs(RunQuery(error_workflow_pending=True), limit=limit):
            try:
                error_run = await self.settle(run, workflows)
            except Exception:
                log.exception(
                    "starting the error workflow of run %s failed; the next sweep tries again",
                    run.execution_id,
                )
                continue
            if error_run is not None:
                started.append(error_run)
        return started

    async def settle(
        self, run: Run, workflows: dict[str, Workflow | None] | None = None
    ) -> str | None:
        """Start the error workflow of the flagged, failed `run` and clear its flag.

        Returns the error run's id (the existing one when another process started
        it first), or None when none was started (not flagged, or the error
        workflow is gone). `workflows` caches the error workflows read, by id.
        """
        if not run.error_workflow_pending:
            return None
        target = run.definition.error_workflow_id
        error_run: Run | None = None
        workflow = None
        if target is not None and run.status is RunStatus.ERROR:
            cache = {} if workflows is None else workflows
            if target not in cache:
                cache[target] = await self.store.get_workflow(target)
            workflow = cache[target]
        if workflow is not None:
            error_run = await self.start_run(
                workflow,
                error_inputs(run),
                idempotency_key=failure_key(run),
                trigger=error_trigger(run),
            )
            data: dict[str, Any] = {
                "level": "info",
                "message": f"error workflow {target} started: run {error_run.execution_id}",
                "error_workflow": {
                    "workflow_id": workflow.id,
                    "execution_id": error_run.execution_id,
                },
            }
        elif target is None or run.status is not RunStatus.ERROR:
            # Only a failed run that names an error workflow is flagged (by the executor).
            data = {
                "level": "warning",
                "message": f"error workflow {target} not started: the run is {run.status}",
            }
        else:
            data = {
                "level": "warning",
                "message": f"error workflow {target} not started: no workflow with this id "
                "(deleted after this workflow was saved)",
            }
        await self._clear(run, data)
        return None if error_run is None else error_run.execution_id

    async def _clear(self, run: Run, data: dict[str, Any]) -> None:
        """Clear the flag and append the `log` event, in one unfenced commit.

        Another process settling the same run at the same moment appends its
        event with the same seq, and one of the two commits is refused: the
        loser re-reads the run and stops if the flag is cleared already.
        """
        for attempt in range(1, _CLEAR_ATTEMPTS + 1):
            event = Event(seq=run.last_seq + 1, type="log", timestamp=utcnow(), data=data)
            try:
                await self.store.checkpoint(
                    run.execution_id,
                    Checkpoint(events=[event], run_fields={"error_workflow_pending": False}),
                )
                return
            except UnstorableValue:
                raise
            except StoreError:
                fresh = await self.store.get_run(run.execution_id, with_events=False)
                if fresh is None or not fresh.error_workflow_pending:
                    return
                if attempt == _CLEAR_ATTEMPTS:
                    raise
                run = fresh
