"""Child runs of `sub-workflow` nodes: the `ChildRuns` port the service plugs in.

A child run is an ordinary run with `parent_execution_id`, `parent_node_id` and
`depth` set and a `{"type": "sub-workflow", ...}` trigger. Its idempotency key is
`sub:{parent execution id}:{node id}` (the full node id, so each item of a loop body
gets its own child), so a node run again after its worker died finds the child it
started instead of starting another.

Waiting (sync mode) never holds a queue slot and never waits on a message nobody
will deliver: the parent's worker drives the child itself (`drive`, in a task of its
own), and when another worker holds the child, or the child parks on a delay or
wait node, it waits for the child's `run_finished` event on the bus while reading
the store now and then (the bus is best effort). Parked children are woken by the
sweep, on any worker, like every parked run. Cancelling the wait (the parent is
cancelled or fails, the node times out, its worker stops) cancels the child; a node
run again then finds that child finished in error or cancelled and retries it from
its failed nodes (`retry`), rather than failing on its old result. See
docs/subflows.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Literal

from ductwork.events.base import EventBus
from ductwork.models import (
    Run,
    RunStatus,
    ValidationIssue,
    WorkflowDefinition,
    new_execution_id,
    utcnow,
)
from ductwork.nodes.base import NodeError, ParentLink
from ductwork.queue.base import Queue
from ductwork.settings import Settings
from ductwork.store.base import DuplicateRun, RunQuery, Store

log = logging.getLogger("ductwork.subflows")

SUB_WORKFLOW = "sub-workflow"
"""The node type name, and the `type` of a child run's trigger."""

POLL_SECONDS = 2.0
"""How often a waiting parent reads the child's events from the store (the bus may
lose a message; every way a run ends stores a `run_finished` event)."""

CHILDREN_PAGE = 500

STARTED_MEMORY = 10_000
"""How many children started here a process remembers until they are waited for."""

RunAction = Callable[[str], Awaitable[Any]]


def child_key(parent: ParentLink) -> str:
    """The idempotency key of the child run a node of a parent run starts."""
    return f"sub:{parent.execution_id}:{parent.node_id}"


class ChildRunner:
    """`nodes.base.ChildRuns` over the store, queue and bus.

    `drive` advances a run in this process (the service's queue handler), `cancel`
    and `retry` are the service's run control (so a cancel cascades and is audited).
    """

    def __init__(
        self,
        *,
        store: Store,
        queue: Queue,
        bus: EventBus,
        settings: Settings,
        drive: RunAction,
        cancel: RunAction,
        retry: RunAction,
    ) -> None:
        self._store = store
        self._queue = queue
        self._bus = bus
        self._settings = settings
        self._drive = drive
        self._cancel = cancel
        self._retry = retry
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started: OrderedDict[str, None] = OrderedDict()
        """Children `start_child` created in this process and nobody waited for yet: a
        wait must not retry them (they failed in this attempt, before it looked)."""

    async def start_child(
        self,
        *,
        parent: ParentLink,
        workflow_id: str,
        version: int | None,
        inputs: Mapping[str, Any],
        mode: Literal["sync", "async"] = "sync",
    ) -> Run:
        """Start the child run (queued), or find the one this node started before."""
        depth = parent.depth + 1
        limit = self._settings.max_workflow_depth
        if depth > limit:
            raise NodeError(
                f"sub-workflow depth {depth} is past DUCTWORK_MAX_WORKFLOW_DEPTH ({limit}): "
                "is a workflow calling itself?"
            )
        if version is None:
            workflow = await self._store.get_workflow(workflow_id)
            missing = f"config.workflow_id: no workflow with the id {workflow_id!r}"
        else:
            workflow = await self._store.get_workflow_version(workflow_id, version)
            missing = f"config.version: workflow {workflow_id!r} has no version {version}"
        if workflow is None:
            raise NodeError(missing)
        run = Run(
            execution_id=new_execution_id(),
            workflow_id=workflow.id,
            workflow_version=workflow.version,
            status=RunStatus.QUEUED,
            definition=workflow.definition,
            variables=dict(inputs),
            created_at=utcnow(),
            idempotency_key=child_key(parent),
            trigger={
                "type": SUB_WORKFLOW,
                "execution_id": parent.execution_id,
                "workflow_id": parent.workflow_id,
                "node_id": parent.node_id,
                # Read by admission: only a child its parent waits for skips the limits.
                "mode": mode,
            },
            parent_execution_id=parent.execution_id,
            parent_node_id=parent.node_id,
            depth=depth,
        )
        try:
            run = await self._store.create_run(run)
        except DuplicateRun as duplicate:
            return duplicate.existing
        self._started[run.execution_id] = None
        if len(self._started) > STARTED_MEMORY:
            self._started.popitem(last=False)  # async children nobody waits for
        # A sync parent drives its child itself (`wait_child`); an async one leaves it
        # to the workers. Either way the sweep picks up a queued child nobody took.
        await self._queue.enqueue(run.execution_id)
        return run

    async def wait_child(self, execution_id: str) -> Run:
        """The child run once it has finished; cancelling the wait cancels the child."""
        fresh = self._started.pop(execution_id, "old") is None
        try:
            return await self._wait(execution_id, retry_failed=not fresh)
        except asyncio.CancelledError:
            # Shielded: the cancel is sent even though this task is being cancelled.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._cancel(execution_id))
            raise

    async def _wait(self, execution_id: str, *, retry_failed: bool) -> Run:
        async with self._watch(execution_id) as finished:
            # Subscribed first, then read: an end between the two is not missed.
            run = await self._get(execution_id)
            if run.cancel_requested and not run.status.finished:
                # An earlier attempt of this node cancelled it (a timeout): let it stop.
                run = await self._until_finished(execution_id, finished, run.last_seq)
            if retry_failed and run.status in (RunStatus.ERROR, RunStatus.CANCELLED):
                # Found again by a node run a second time (a retry, a re-run after a
                # crash): the child goes on from its failed nodes.
                finished.clear()
                await self._retry(execution_id)
                run = await self._get(execution_id)
            if run.status.finished:
                return run
            # In a task of its own: cancelling the wait must stop the child through its
            # cancel flag, not by cutting its driver off in the middle of a commit.
            self._spawn(self._drive(execution_id))
            return await self._until_finished(execution_id, finished, run.last_seq)

    async def _until_finished(
        self, execution_id: str, finished: asyncio.Event, after_seq: int
    ) -> Run:
        """The run once it has ended: on its `run_finished` event (bus), or when a look
        in the store every POLL_SECONDS finds one (the bus is best effort)."""
        while True:
            try:
                await asyncio.wait_for(finished.wait(), timeout=POLL_SECONDS)
            except TimeoutError:
                fresh = await self._store.list_events(execution_id, after_seq)
                if fresh:
                    after_seq = fresh[-1].seq
                if not any(event.type == "run_finished" for event in fresh):
                    continue
            run = await self._get(execution_id)
            if run.status.finished:
                return run
            # An event of an earlier end (before a retry) arrived late: wait on.
            finished.clear()

    async def _get(self, execution_id: str) -> Run:
        run = await self._store.get_run(execution_id, with_events=False)
        if run is None:
            raise NodeError(f"sub-workflow run {execution_id} no longer exists")
        return run

    def _spawn(self, work: Awaitable[Any]) -> None:
        async def quietly() -> None:
            try:
                await work
            except Exception:
                log.exception("driving a sub-workflow run failed")

        task = asyncio.get_running_loop().create_task(quietly())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @contextlib.asynccontextmanager
    async def _watch(self, execution_id: str) -> AsyncIterator[asyncio.Event]:
        """An event set when the run's `run_finished` event reaches this process."""
        finished = asyncio.Event()
        async with self._bus.subscribe(execution_id) as stream:

            async def pump() -> None:
                async for event in stream:
                    if event.type == "run_finished":
                        finished.set()

            task = asyncio.get_running_loop().create_task(pump())
            try:
                yield finished
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def close(self) -> None:
        """Stop driving child runs: like any run a closing process held, each goes on
        from its last checkpoint on the next worker."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def unfinished_children(store: Store, execution_id: str) -> list[str]:
    """Ids of the unfinished child runs of a run (every page)."""
    found: list[str] = []
    offset = 0
    while True:
        page = await store.find_runs(
            RunQuery(parent_execution_id=execution_id), limit=CHILDREN_PAGE, offset=offset
        )
        found.extend(run.execution_id for run in page if not run.status.finished)
        if len(page) < CHILDREN_PAGE:
            return found
        offset += CHILDREN_PAGE


def _literal(value: Any) -> bool:
    return isinstance(value, str) and "{{" not in value


async def reference_issues(definition: WorkflowDefinition, store: Store) -> list[ValidationIssue]:
    """`sub-workflow` nodes must name a saved workflow (and version, when pinned).

    Ids written as templates are checked when the node runs. A workflow may call
    itself (only an existing workflow has an id to name): DUCTWORK_MAX_WORKFLOW_DEPTH
    stops the recursion.
    """
    issues: list[ValidationIssue] = []
    for node in definition.nodes:
        if node.type != SUB_WORKFLOW:
            continue
        workflow_id = node.config.get("workflow_id")
        if not _literal(workflow_id):
            continue
        assert isinstance(workflow_id, str)
        workflow = await store.get_workflow(workflow_id)
        if workflow is None:
            issues.append(
                ValidationIssue(
                    node_id=node.id,
                    field="config.workflow_id",
                    message=f"no workflow with the id {workflow_id!r}",
                )
            )
            continue
        version = node.config.get("version")
        if not isinstance(version, int) or isinstance(version, bool):
            continue  # current version, or a bad value the config model reports
        if await store.get_workflow_version(workflow_id, version) is None:
            issues.append(
                ValidationIssue(
                    node_id=node.id,
                    field="config.version",
                    message=f"workflow {workflow_id!r} has no version {version}",
                )
            )
    return issues
