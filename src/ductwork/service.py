"""Use cases shared by the API and the CLI: workflows, runs, run control, the sweep."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from ductwork import metrics
from ductwork.cache.base import Cache
from ductwork.engine.admission import AdmissionControl
from ductwork.engine.executor import Executor, off_loop_if_large
from ductwork.engine.graph import WorkflowInvalid, build_plan, validate
from ductwork.engine.limits import WorkflowLimits
from ductwork.engine.loop import rerun_on_retry
from ductwork.events.base import EventBus
from ductwork.models import (
    Checkpoint,
    Event,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    RunSummary,
    ValidationIssue,
    Workflow,
    WorkflowDefinition,
    new_execution_id,
    new_workflow_id,
    utcnow,
)
from ductwork.nodes.base import NodeServices, NodeType
from ductwork.pruning import Pruner
from ductwork.queue.base import Queue
from ductwork.security.accounts import Accounts
from ductwork.security.audit import AuditLog
from ductwork.security.authn import Authenticator
from ductwork.security.context import current
from ductwork.security.credential_types import CredentialSource
from ductwork.security.credentials import CredentialService
from ductwork.security.models import AuditFields, Permission
from ductwork.security.ratelimit import RateLimiter
from ductwork.settings import Settings
from ductwork.store.base import DuplicateRun, RunCursor, RunQuery, Store, TriggerConflict
from ductwork.subflows import ChildRunner, unfinished_children
from ductwork.subflows import reference_issues as subflow_reference_issues
from ductwork.triggers.errors import ErrorWorkflows
from ductwork.triggers.hooks import HookAnswer, HookCall, Hooks, webhook_issues
from ductwork.triggers.resume import Resumer
from ductwork.triggers.schedule import run_trigger, slot_key
from ductwork.triggers.scheduler import Scheduler, ScheduleStatus, describe_schedules
from ductwork.triggers.spec import PAUSED, ScheduleTrigger, normalize_hook_path, parse_triggers
from ductwork.usage import start_of_day, usage_report
from ductwork.versions import WorkflowVersionInfo, diff_definitions

log = logging.getLogger("ductwork.service")


class SweepLock(Protocol):
    """Mutual exclusion for the sweep across processes."""

    async def acquire(self) -> bool:
        """True when this process may sweep now."""

    async def close(self) -> None:
        """Give the lock up."""


class NotFound(LookupError):
    """No such workflow or run."""

    def __init__(self, kind: str, identifier: str) -> None:
        super().__init__(f"{kind} {identifier!r} not found")
        self.kind = kind
        self.identifier = identifier


class Conflict(Exception):
    """The request does not fit the current state (e.g. retrying a running run)."""


@dataclass
class Components:
    """The adapters one process runs with, built by `ductwork.runtime` from settings."""

    settings: Settings
    store: Store
    cache: Cache
    queue: Queue
    bus: EventBus
    services: NodeServices
    registry: Mapping[str, NodeType[Any]]
    consume: bool = True
    """Whether this process advances runs itself (embedded, worker) or only enqueues (API)."""
    sweep: bool = True
    sweep_lock: SweepLock | None = None
    """Shared deployments: only the holder sweeps, so runs are not re-enqueued N times."""
    closers: list[Any] = field(default_factory=list)
    credentials: CredentialSource | None = None
    """Where runs load the credentials their workflows name (the credentials service:
    `ductwork.security.credentials.CredentialService`, which also checks saved workflows)."""
    audit: AuditLog | None = None
    """The audit log; None: one over `store.security`."""
    limiter: RateLimiter | None = None
    """Named rate limits ("login", "execute"); in memory unless built with Redis."""


class Ductwork:
    """The application: what the API routes and CLI commands call."""

    def __init__(self, components: Components) -> None:
        self.components = components
        self.settings = components.settings
        self.store = components.store
        self.queue = components.queue
        self.bus = components.bus
        self.registry = components.registry
        self.credentials = components.credentials
        self.audit = (
            components.audit if components.audit is not None else AuditLog(self.store.security)
        )
        """Write actions below record here, as the current request's principal (the
        audit awaits its insert but never fails the action: `AuditLog.record`)."""
        self.drives_own_queue = components.consume and components.queue.local
        """This process advances what it enqueues (the in-process queue, consumed here):
        a run it creates is inserted leased to its executor and handed to it
        (`Executor.lease_new_run`, `Executor.expect`)."""
        self.limits = WorkflowLimits.from_settings(components.settings)
        """Ceilings a saved workflow must stay under (DUCTWORK_MAX_* settings)."""
        self.limiter = components.limiter or RateLimiter(components.settings)
        self.admission = AdmissionControl(
            components.store, components.bus, components.settings, offer=self._offer_runs
        )
        """Concurrency limits (`engine/admission.py`); offers waiting runs through the queue."""
        self.executor = Executor(
            store=components.store,
            bus=components.bus,
            services=components.services,
            registry=components.registry,
            settings=components.settings,
            on_commit=metrics.observe,
            credentials=components.credentials,
            admission=self.admission,
        )
        security = components.store.security
        self.authenticator = Authenticator(security, components.bus, components.settings)
        self.accounts = Accounts(
            security,
            self.authenticator,
            components.settings,
            audit=lambda: getattr(self, "audit", None),
        )
        self.error_workflows = ErrorWorkflows(self.store, self._start_error_run)
        """Starts the error workflow of each failed run (`ductwork.triggers.errors`)."""
        self.resumes = Resumer(self.store, self.queue, self.registry, self.audit)
        """Resumes parked wait nodes, by signed link or by API (`triggers/resume.py`)."""
        self.resume_links = components.services.resume_links
        self.trigger_listeners: list[Callable[[str], None]] = []
        """Called with a workflow id when its triggers may have changed, in every process
        (the scheduler re-reads its schedules, the webhook route cache forgets it)."""
        self.hooks = Hooks(
            self.store, self.settings, self.limiter, self.credentials, start=self.execute
        )
        """Serves `/hooks/{path}` (`call_hook`)."""
        self.trigger_listeners.append(self.hooks.forget)
        self.pruner = Pruner(self.store, self.settings)
        """Deletes finished runs past their retention (`ductwork.pruning`)."""
        self._background: list[asyncio.Task[None]] = []
        self.scheduler: Scheduler | None = None
        """Fires schedules in sweeping processes (DUCTWORK_SCHEDULER); None elsewhere."""
        self._started = False
        self.child_runs = ChildRunner(
            store=self.store,
            queue=self.queue,
            bus=self.bus,
            settings=self.settings,
            drive=self._advance,
            cancel=self.cancel,
            retry=self.retry,
        )
        """Starts and awaits the child runs of `sub-workflow` nodes (`ductwork.subflows`)."""
        components.services.child_runs = self.child_runs

    # Lifecycle ------------------------------------------------------------------
    async def start(self) -> None:
        """Connect adapters, start consuming and sweeping as configured."""
        if self._started:
            return
        await self.store.start()
        loop = asyncio.get_running_loop()
        if self.components.consume:
            await self.queue.start_consuming(self._advance)
        # Every process listens: cancellations reach the process running the run, and
        # revoked keys and sessions leave every process's authentication cache.
        self._background.append(loop.create_task(self._listen_for_control()))
        if self.components.sweep:
            self._background.append(loop.create_task(self._sweep_forever()))
            self._background.append(loop.create_task(self.pruner.run_forever(self._may_sweep)))
        if self.components.sweep and self.settings.scheduler:
            self.scheduler = Scheduler(self.store, self.settings, self.fire_schedule)
            self.trigger_listeners.append(self.scheduler.changed)
            self._background.append(loop.create_task(self.scheduler.run_forever()))
        self._started = True

    async def close(self) -> None:
        """Stop background work and release every connection."""
        await self.child_runs.close()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self.scheduler is not None:
            self.trigger_listeners.remove(self.scheduler.changed)
            self.scheduler = None
        await self.authenticator.close()
        await self.queue.close()
        if self.drives_own_queue:
            await self.executor.release_unstarted()  # runs its queue held, leased to it
        await self.bus.close()
        await self.components.cache.close()
        if self.components.sweep_lock is not None:
            await self.components.sweep_lock.close()
        for closer in self.components.closers:
            with contextlib.suppress(Exception):
                await closer()
        await self.store.close()
        self._started = False

    async def _offer_runs(self, execution_ids: Sequence[str]) -> None:
        """Enqueue runs that may get a concurrency slot now (unless a message waits already)."""
        for execution_id in execution_ids:
            await self.queue.enqueue_unless_pending(execution_id)

    async def _advance(self, execution_id: str) -> None:
        metrics.RUNS_ACTIVE.inc()
        try:
            status = await self.executor.advance(execution_id)
        finally:
            metrics.RUNS_ACTIVE.dec()
        if status is RunStatus.ERROR:
            # The fast path; the sweep starts it if this process dies first.
            await self.error_workflows.after_failure(execution_id)

    # Workflows ------------------------------------------------------------------
    async def validate(self, definition: WorkflowDefinition) -> list[ValidationIssue]:
        """Every problem with a definition (empty when valid).

        Stored credentials are checked only for a principal that may read their
        metadata (CREDENTIALS_READ): validating needs only READ, and "no credential
        named X" or "X is of type bearer" would tell a viewer which credentials
        exist. Saving a workflow (EDIT) always checks them.
        """
        issues = await off_loop_if_large(
            definition, validate, definition, self.registry, self.limits
        )
        issues.extend(parse_triggers(definition.triggers)[1])
        issues.extend(await self._reference_issues(definition))
        if isinstance(self.credentials, CredentialService) and current().principal.can(
            Permission.CREDENTIALS_READ
        ):
            issues.extend(await self.credentials.check_definition(definition))
        return issues

    async def _check(self, definition: WorkflowDefinition) -> None:
        """Raise WorkflowInvalid listing every problem of the graph, triggers and references."""
        try:
            await off_loop_if_large(definition, build_plan, definition, self.registry, self.limits)
            issues: list[ValidationIssue] = []
        except WorkflowInvalid as exc:
            issues = list(exc.issues)
        issues.extend(parse_triggers(definition.triggers)[1])
        issues.extend(await self._reference_issues(definition))
        if issues:
            raise WorkflowInvalid(issues)

    async def _reference_issues(self, definition: WorkflowDefinition) -> list[ValidationIssue]:
        """Workflows a definition names (its `error_workflow_id`, its sub-workflow nodes'
        `workflow_id`) must exist; webhooks must not copy their token into run inputs
        (credentials: `check_definition`)."""
        issues = webhook_issues(definition)
        issues.extend(await subflow_reference_issues(definition, self.store))
        target = definition.error_workflow_id
        if target is None or await self.store.get_workflow(target) is not None:
            return issues
        return [
            *issues,
            ValidationIssue(
                field="error_workflow_id", message=f"no workflow with the id {target!r}"
            ),
        ]

    @staticmethod
    def _path_conflict(
        definition: WorkflowDefinition, conflict: TriggerConflict
    ) -> WorkflowInvalid:
        """A 422 naming the trigger whose path another workflow serves."""
        index = next(
            (
                i
                for i, item in enumerate(definition.triggers)
                if isinstance(item, dict)
                and isinstance(item.get("path"), str)
                and normalize_hook_path(item["path"]) == conflict.path
            ),
            0,
        )
        return WorkflowInvalid(
            [
                ValidationIssue(
                    field=f"triggers[{index}].path",
                    message=f"/hooks/{conflict.path} is served by workflow "
                    f"{conflict.workflow_id} already; webhook paths are unique",
                )
            ]
        )

    async def _check_credentials(self, definition: WorkflowDefinition) -> None:
        """A saved workflow names only credentials that exist, of types its nodes accept."""
        # A test may plug in a bare CredentialSource; only the service knows what is stored.
        if isinstance(self.credentials, CredentialService):
            issues = await self.credentials.check_definition(definition)
            if issues:
                raise WorkflowInvalid(issues)

    async def create_workflow(self, definition: WorkflowDefinition) -> Workflow:
        """Validate and save a new workflow; raises WorkflowInvalid."""
        await self._check(definition)
        await self._check_credentials(definition)
        now = utcnow()
        workflow = Workflow(
            id=new_workflow_id(), version=1, definition=definition, created_at=now, updated_at=now
        )
        try:
            workflow = await self.store.create_workflow(workflow)
        except TriggerConflict as conflict:
            raise self._path_conflict(definition, conflict) from None
        await self._audit_workflow("workflow.create", workflow)
        await self._triggers_changed(workflow.id)
        return workflow

    async def _triggers_changed(self, workflow_id: str) -> None:
        """Tell every process (schedulers, webhook route caches) a workflow changed."""
        self.hooks.forget(workflow_id)  # this process's next call already sees the change
        await self.bus.publish_control({"action": "triggers_changed", "workflow_id": workflow_id})

    async def _audit_workflow(
        self, action: str, workflow: Workflow, *, restored_from: int | None = None
    ) -> None:
        # Name and version only: a definition's configs may hold anything.
        details: dict[str, Any] = {"name": workflow.definition.name, "version": workflow.version}
        if restored_from is not None:
            details["restored_from"] = restored_from
        await self.audit.record(action, target=f"workflow:{workflow.id}", details=details)

    async def get_workflow(self, workflow_id: str) -> Workflow:
        workflow = await self.store.get_workflow(workflow_id)
        if workflow is None:
            raise NotFound("workflow", workflow_id)
        return workflow

    async def list_workflows(
        self, limit: int = 100, offset: int = 0, *, q: str | None = None
    ) -> list[Workflow]:
        return await self.store.list_workflows(limit=limit, offset=offset, q=q)

    async def update_workflow(
        self,
        workflow_id: str,
        definition: WorkflowDefinition,
        *,
        action: str = "workflow.update",
        restored_from: int | None = None,
    ) -> Workflow:
        """Validate and replace a definition (new version); runs in flight keep theirs.

        `action` and `restored_from` name the audit entry (a restore of a version).
        """
        await self._check(definition)
        await self._check_credentials(definition)
        try:
            workflow = await self.store.update_workflow(workflow_id, definition, utcnow())
        except TriggerConflict as conflict:
            raise self._path_conflict(definition, conflict) from None
        if workflow is None:
            raise NotFound("workflow", workflow_id)
        await self._audit_workflow(action, workflow, restored_from=restored_from)
        await self._triggers_changed(workflow.id)
        return workflow

    async def delete_workflow(self, workflow_id: str) -> None:
        # Read first so the entry names what was deleted (one read per delete).
        workflow = await self.store.get_workflow(workflow_id)
        if workflow is None or not await self.store.delete_workflow(workflow_id):
            raise NotFound("workflow", workflow_id)
        await self._audit_workflow("workflow.delete", workflow)
        await self._triggers_changed(workflow_id)

    async def set_paused(self, workflow_id: str, paused: bool) -> Workflow:
        """Pause (or resume) a workflow's schedules and webhooks; manual runs still start.

        A new version with `status` changed, audited and announced like any update,
        but not re-validated: a workflow whose credential was deleted can still be
        paused. Asking for the state it is in changes nothing.
        """
        workflow = await self.get_workflow(workflow_id)
        status = PAUSED if paused else "active"
        if workflow.definition.status == status:
            return workflow
        definition = workflow.definition.model_copy(update={"status": status})
        updated = await self.store.update_workflow(workflow_id, definition, utcnow())
        if updated is None:
            raise NotFound("workflow", workflow_id)
        await self._audit_workflow("workflow.pause" if paused else "workflow.resume", updated)
        await self._triggers_changed(workflow_id)
        return updated

    async def schedules(self, workflow_id: str) -> list[ScheduleStatus]:
        """A workflow's schedules: last slot fired and the next five (`GET .../schedule`)."""
        workflow = await self.get_workflow(workflow_id)
        return await describe_schedules(self.store, workflow, utcnow())

    async def fire_schedule(
        self, workflow: Workflow, trigger: ScheduleTrigger, slot: datetime
    ) -> tuple[Run, bool]:
        """Start the run of one schedule slot, once however many processes ask.

        The slot's key is the run's idempotency key: a process that comes second gets
        the existing run (created=False). The run is stored queued, then enqueued; a
        process dying between the two leaves it to the sweep (queued, nobody holds it).
        """
        return await self._start_run(
            workflow.id,
            workflow.version,
            workflow.definition,
            trigger.inputs,
            wait=False,
            idempotency_key=slot_key(trigger, slot),
            wait_seconds=None,
            with_events=False,
            trigger=run_trigger(trigger, slot),
        )

    # Runs -----------------------------------------------------------------------
    async def execute(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = False,
        idempotency_key: str | None = None,
        wait_seconds: float | None = None,
        with_events: bool = True,
        trigger: Mapping[str, Any] | None = None,
        workflow: Workflow | None = None,
    ) -> tuple[Run, bool]:
        """Start a run of a stored workflow. Returns (run, created).

        With `wait`, answers when the run ends or after `wait_seconds` (default
        DUCTWORK_SYNC_WAIT_SECONDS), with the run as it stands then (its events
        too unless `with_events` is false). A known idempotency key returns the
        existing run (created=False). `trigger` says what started it (e.g.
        `{"type": "manual"}`) and is stored with the run. `workflow`: the stored
        workflow when the caller holds it already (the webhook route's cache), saving
        a read.
        """
        if workflow is None or workflow.id != workflow_id:
            workflow = await self.get_workflow(workflow_id)
        return await self._start_run(
            workflow.id,
            workflow.version,
            workflow.definition,
            inputs or {},
            wait=wait,
            idempotency_key=idempotency_key,
            wait_seconds=wait_seconds,
            with_events=with_events,
            trigger=trigger,
        )

    async def execute_definition(
        self,
        definition: WorkflowDefinition,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        wait_seconds: float | None = None,
    ) -> Run:
        """Run a definition that is not saved (the CLI's `run FILE`)."""
        await self._check(definition)
        digest = hashlib.sha256(orjson.dumps(definition.dump(), option=orjson.OPT_SORT_KEYS))
        run, _ = await self._start_run(
            f"file:{digest.hexdigest()[:16]}",
            1,
            definition,
            inputs or {},
            wait=wait,
            idempotency_key=None,
            wait_seconds=wait_seconds,
            with_events=True,
            trigger={"type": "manual"},
        )
        return run

    async def _start_error_run(
        self,
        workflow: Workflow,
        inputs: Mapping[str, Any],
        *,
        idempotency_key: str,
        trigger: Mapping[str, Any],
    ) -> Run:
        """Start an error workflow's run (`triggers.errors.StartRun`): the existing run
        when another process started it with this key first."""
        run, _ = await self._start_run(
            workflow.id,
            workflow.version,
            workflow.definition,
            inputs,
            wait=False,
            idempotency_key=idempotency_key,
            wait_seconds=None,
            with_events=False,
            trigger=trigger,
        )
        return run

    async def _start_run(
        self,
        workflow_id: str,
        version: int,
        definition: WorkflowDefinition,
        inputs: Mapping[str, Any],
        *,
        wait: bool,
        idempotency_key: str | None,
        wait_seconds: float | None,
        with_events: bool,
        trigger: Mapping[str, Any] | None = None,
    ) -> tuple[Run, bool]:
        now = utcnow()
        run = Run(
            execution_id=new_execution_id(),
            workflow_id=workflow_id,
            workflow_version=version,
            status=RunStatus.QUEUED,
            definition=definition,
            variables=dict(inputs),
            created_at=now,
            idempotency_key=idempotency_key,
            trigger=None if trigger is None else dict(trigger),
        )
        # Recorded with the run and before it is queued or waited on: the entry's time
        # is the start, and an idempotent replay (DuplicateRun) adds none.
        audit_args: AuditFields = {
            "target": f"execution:{run.execution_id}",
            "details": {"workflow_id": workflow_id, "version": version},
        }
        # This process takes the message itself: the run is inserted leased to its
        # executor (one lease statement fewer; `Executor.lease_new_run` says when not).
        if self.drives_own_queue:
            run = self.executor.lease_new_run(run)
        entry = None
        if self.audit.writes_to(self.store.security):
            # The store appends it in the run's own commit (one commit, not two).
            with contextlib.suppress(Exception):  # as `AuditLog.record` never raises
                entry = self.audit.entry("run.start", **audit_args)
        try:
            run = await self.store.create_run(run, audit=entry)
        except DuplicateRun as duplicate:
            existing = duplicate.existing
            if wait:
                existing = await self.wait_for(
                    existing.execution_id, wait_seconds, with_events=with_events
                )
            return existing, False
        if entry is None:
            # An audit log over another store (or an entry that could not be built):
            # appended on its own, as any other action's.
            await self.audit.record("run.start", **audit_args)
        if self.drives_own_queue:
            # Nor need its executor read back the run it was just handed (`expect`).
            self.executor.expect(run)
        if wait:
            async with self._watch(run.execution_id) as events:
                await self.queue.enqueue(run.execution_id)
                finished = await self._wait(run.execution_id, events, wait_seconds, with_events)
                return finished, True
        await self.queue.enqueue(run.execution_id)
        return run, True

    async def call_hook(self, call: HookCall) -> HookAnswer:
        """Answer a call to `/hooks/{path}`; raises HookRefused when it starts nothing."""
        return await self.hooks.call(call)

    async def get_run(
        self, execution_id: str, *, with_events: bool = True, with_node_states: bool = True
    ) -> Run:
        """The run (its node states and events unless told not to); NotFound if none."""
        run = await self.store.get_run(
            execution_id, with_events=with_events, with_node_states=with_node_states
        )
        if run is None:
            raise NotFound("execution", execution_id)
        return run

    async def list_runs(
        self,
        workflow_id: str,
        query: RunQuery = RunQuery(),
        limit: int = 100,
        offset: int = 0,
        *,
        after: RunCursor | None = None,
    ) -> list[Run]:
        """Runs of a workflow matching `query`, newest first, with their events (after
        the cursor `after` when given).

        A deleted workflow's runs stay listed; an id that never had a run nor a
        workflow is NotFound.
        """
        query = replace(query, workflow_id=workflow_id)
        runs = await self.store.find_runs(
            query, limit=limit, offset=offset, with_events=True, after=after
        )
        first_page = offset == 0 and after is None
        if not runs and first_page and not await self._has_workflow_or_runs(workflow_id):
            raise NotFound("workflow", workflow_id)
        return runs

    async def workflow_usage(self, workflow_id: str, days: int) -> dict[str, Any]:
        """Tokens and cost of the workflow's runs created in the last `days` UTC days
        (today included), per day and in total (`ductwork.usage.usage_report`). A
        deleted workflow's runs still count; an id with neither is NotFound."""
        since = start_of_day(utcnow()) - timedelta(days=days - 1)
        rows = await self.store.workflow_usage(workflow_id, since)
        if not rows and not await self._has_workflow_or_runs(workflow_id):
            raise NotFound("workflow", workflow_id)
        return usage_report(workflow_id, since, rows)

    async def _has_workflow_or_runs(self, workflow_id: str) -> bool:
        if await self.store.get_workflow(workflow_id) is not None:
            return True
        return bool(await self.store.find_runs(RunQuery(workflow_id=workflow_id), limit=1))

    async def find_runs(
        self,
        query: RunQuery,
        limit: int = 100,
        offset: int = 0,
        *,
        after: RunCursor | None = None,
    ) -> list[Run]:
        """Runs of every workflow matching `query`, newest first, without their events
        (after the cursor `after` when given)."""
        return await self.store.find_runs(query, limit=limit, offset=offset, after=after)

    async def event_page(self, execution_id: str, after_seq: int, limit: int) -> list[Event]:
        """Up to `limit` events of a run after seq `after_seq`, in order; NotFound for an
        unknown run (only looked up when the page is empty: a run with events exists)."""
        events = await self.store.list_events(execution_id, after_seq, limit=limit)
        if not events and await self.store.get_run(execution_id, with_events=False) is None:
            raise NotFound("execution", execution_id)
        return events

    async def last_runs(self, workflows: Sequence[Workflow]) -> dict[str, RunSummary]:
        """The newest run of each of `workflows` (one store query for the lot)."""
        return await self.store.latest_runs([workflow.id for workflow in workflows])

    async def cancel(self, execution_id: str) -> Run:
        """Ask a run to stop, wherever it runs; a finished run is returned unchanged."""
        run = await self.get_run(execution_id)
        if run.status.finished:
            return run
        if self.drives_own_queue:
            # Inserted leased to this process and still waiting in its queue: free, a
            # queued run is cancelled at once instead of when a queue slot frees.
            await self.executor.give_back_unstarted(execution_id)
        updated = await self.store.request_cancel(execution_id)
        if updated is None:
            raise NotFound("execution", execution_id)
        if not self.executor.cancel_local(execution_id):
            await self.bus.publish_control({"action": "cancel", "execution_id": execution_id})
        if updated.status in (RunStatus.WAITING, RunStatus.QUEUED):
            # Nobody holds a parked run, nor a queued one a worker was refusing a
            # slot just then: wake it so a worker finishes it as cancelled.
            await self.queue.enqueue(execution_id)
        elif run.status is RunStatus.QUEUED:
            await self.admission.after_cancel(updated)  # its place in line is free
        for child in await unfinished_children(self.store, execution_id):
            # The runs its sub-workflow nodes started, and theirs (recursively).
            with contextlib.suppress(NotFound):
                await self.cancel(child)
        # Only a cancel that was requested is recorded (a finished run is returned above).
        await self.audit.record(
            "run.cancel",
            target=f"execution:{execution_id}",
            details={"workflow_id": run.workflow_id, "status": str(run.status)},
        )
        return updated

    async def retry(self, execution_id: str, *, use_current_definition: bool = False) -> Run:
        """Resume a failed or cancelled run from its failed nodes, keeping completed outputs."""
        run = await self.get_run(execution_id)
        if run.status not in (RunStatus.ERROR, RunStatus.CANCELLED):
            raise Conflict(
                f"only failed or cancelled runs can be retried; this one is {run.status}"
            )
        if run.error_workflow_pending:
            # Report this failure before the retry clears its error and failed node.
            await self.error_workflows.settle(run)
            run = await self.get_run(execution_id)
        fields: dict[str, Any] = {
            "status": RunStatus.QUEUED,
            "end_time": None,
            "error": None,
            "cancel_requested": False,
            # A person asked for it again: the re-drive budget starts over.
            "redrives": 0,
            "dead_letter": False,
            # It takes a concurrency slot again before it starts (engine/admission.py).
            "admitted": False,
            "queued_reason": None,
        }
        definition = run.definition
        if use_current_definition:
            workflow = await self.get_workflow(run.workflow_id)
            definition = workflow.definition
            fields["definition"] = definition
            fields["workflow_version"] = workflow.version
        parents = {node.id: node.parent for node in definition.nodes}
        reset = {
            node_id: NodeState()
            for node_id, state in run.node_states.items()
            if state.status
            in (NodeStatus.FAILED, NodeStatus.CANCELLED, NodeStatus.SKIPPED, NodeStatus.RUNNING)
            # `b[3]`: loop items that did not finish run again, the others are kept.
            and rerun_on_retry(node_id, parents, run.node_states)
        }
        event = Event(
            seq=run.last_seq + 1,
            type="log",
            timestamp=utcnow(),
            data={"level": "info", "message": f"retry requested; resetting {sorted(reset)}"},
        )
        await self.store.checkpoint(
            execution_id, Checkpoint(node_states=reset, events=[event], run_fields=fields)
        )
        await self.queue.enqueue(execution_id)
        await self.audit.record(
            "run.retry",
            target=f"execution:{execution_id}",
            details={
                "workflow_id": run.workflow_id,
                "version": fields.get("workflow_version", run.workflow_version),
                "use_current_definition": use_current_definition,
                "nodes_reset": len(reset),
            },
        )
        return await self.get_run(execution_id)

    async def wait_for(
        self, execution_id: str, wait_seconds: float | None = None, *, with_events: bool = True
    ) -> Run:
        """The run once it has ended, or as it stands after wait_seconds."""
        async with self._watch(execution_id) as finished:
            # Subscribed first, then read: an end between the two is not missed.
            run = await self.get_run(execution_id, with_events=with_events)
            if run.status.finished:
                return run
            return await self._wait(
                execution_id, finished, wait_seconds, with_events, after_seq=run.last_seq
            )

    @contextlib.asynccontextmanager
    async def _watch(self, execution_id: str) -> AsyncIterator[asyncio.Event]:
        """Subscribe before anything is enqueued, so the end of the run cannot slip past.

        Yields an asyncio.Event set when the run's `run_finished` event arrives.
        """
        finished = asyncio.Event()
        async with self.bus.subscribe(execution_id) as stream:

            async def pump() -> None:
                async for event in stream:
                    if event.type == "run_finished":
                        finished.set()
                        return

            task = asyncio.get_running_loop().create_task(pump())
            try:
                yield finished
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _wait(
        self,
        execution_id: str,
        finished: asyncio.Event,
        wait_seconds: float | None,
        with_events: bool = True,
        *,
        after_seq: int = 0,
    ) -> Run:
        """The run once its `run_finished` event is seen (or when the wait is over).

        `after_seq`: events up to this seq were there before the wait began (an
        earlier run_finished of a run retried since does not count).
        """
        budget = self.settings.sync_wait_seconds if wait_seconds is None else wait_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        while not finished.is_set():
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                # The bus is best effort; look in the store now and then regardless.
                await asyncio.wait_for(finished.wait(), timeout=min(remaining, 2.0))
            except TimeoutError:
                # Only the events since the last look: re-reading the whole run every
                # 2 s made waiting on a 10,000-node run quadratic (and starved the loop).
                # Every way a run ends stores a run_finished event (see live.py).
                fresh = await self.store.list_events(execution_id, after_seq)
                if fresh:
                    after_seq = fresh[-1].seq
                if any(event.type == "run_finished" for event in fresh):
                    break
        return await self.get_run(execution_id, with_events=with_events)

    # Retention and versions (issue 11) ------------------------------------------------
    async def delete_run(self, execution_id: str) -> None:
        """Delete a finished run with its node states and events (audited).

        NotFound for an unknown run; Conflict for one that has not finished (cancel
        it first): the store re-checks that in the write, so a run retried meanwhile
        is kept.
        """
        run = await self.get_run(execution_id, with_events=False)
        if not run.status.finished or not await self.store.delete_run(execution_id):
            current = await self.store.get_run(execution_id, with_events=False)
            if current is None:
                raise NotFound("execution", execution_id)
            raise Conflict(f"execution {execution_id} is {current.status}: cancel it first")
        await self.audit.record(
            "run.delete",
            target=f"execution:{execution_id}",
            details={"workflow_id": run.workflow_id, "status": str(run.status)},
        )

    async def list_versions(
        self, workflow_id: str, limit: int = 100, offset: int = 0
    ) -> list[WorkflowVersionInfo]:
        """A stored workflow's versions, newest first; NotFound for an unknown workflow."""
        await self.get_workflow(workflow_id)
        return await self.store.list_workflow_versions(workflow_id, limit=limit, offset=offset)

    async def get_version(self, workflow_id: str, version: int) -> Workflow:
        """One saved version of a workflow; NotFound for an unknown workflow or version."""
        try:
            found = await self.store.get_workflow_version(workflow_id, version)
        except ValidationError as exc:
            # Saved under older rules that no longer parse: say so rather than fail.
            issues = [
                ValidationIssue(
                    field=".".join(str(part) for part in error["loc"]) or None,
                    message=f"version {version} no longer parses: {error['msg']}",
                )
                for error in exc.errors()
            ]
            raise WorkflowInvalid(issues) from None
        if found is None:
            await self.get_workflow(workflow_id)
            raise NotFound("version", f"{version} of workflow {workflow_id}")
        return found

    async def restore_version(self, workflow_id: str, version: int) -> Workflow:
        """Save version `version`'s definition again, as a new version.

        Validated like any save (WorkflowInvalid when today's rules refuse it) and
        audited as `workflow.restore`.
        """
        old = await self.get_version(workflow_id, version)
        return await self.update_workflow(
            workflow_id, old.definition, action="workflow.restore", restored_from=version
        )

    async def diff_versions(self, workflow_id: str, old: int, new: int) -> dict[str, Any]:
        """What changed from version `old` to version `new` (`ductwork.versions`)."""
        before = await self.get_version(workflow_id, old)
        after = await self.get_version(workflow_id, new)
        return diff_definitions(
            before.definition, after.definition, from_version=old, to_version=new
        )

    # Background work --------------------------------------------------------------
    async def sweep_once(self, only: str | None = None) -> list[str]:
        """Enqueue runs that need a worker: expired leases, due wake-ups, orphaned queued runs,
        the first run waiting for a concurrency slot of each workflow (`engine/admission.py`);
        then start the error workflows failed runs still wait for (`triggers.errors`).

        Returns the ids enqueued (error runs not included). Only the holder of the
        sweep lock (if any) sweeps. A run whose previous message no worker has taken
        yet is not enqueued again
        (`Queue.enqueue_unless_pending`), so a backlog is not multiplied by the
        sweeps that pass over it. `only` limits the sweep to that one run (the CLI's
        `run` sweeps its own run and never adopts anybody else's, nor their failures).
        """
        lock = self.components.sweep_lock
        if lock is not None and not await lock.acquire():
            return []
        enqueued = []
        for execution_id in await self.store.find_runs_to_resume(utcnow()):
            if execution_id in self.executor.active_runs:
                continue
            if only is not None and execution_id != only:
                continue
            if await self.queue.enqueue_unless_pending(execution_id):
                enqueued.append(execution_id)
        # Runs refused a concurrency slot: the head of each workflow's line.
        for execution_id in await self.admission.sweep_offers():
            if execution_id in self.executor.active_runs:
                continue
            if only is not None and execution_id != only:
                continue
            if await self.queue.enqueue_unless_pending(execution_id):
                enqueued.append(execution_id)
        if only is None:
            # Failed runs whose error workflow their failing process did not start.
            await self.error_workflows.sweep()
        return enqueued

    async def _may_sweep(self) -> bool:
        """Whether this process holds the sweep lock (always, without one)."""
        lock = self.components.sweep_lock
        return lock is None or await lock.acquire()

    async def _sweep_forever(self) -> None:
        interval = self.settings.sweep_interval_seconds
        while True:
            try:
                await self.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sweep failed; trying again in %.1f s", interval)
            await asyncio.sleep(interval)

    async def _listen_for_control(self) -> None:
        async with self.bus.subscribe_control() as messages:
            # Subscribed now: anything revoked or changed while no subscription was live
            # may be cached.
            self.authenticator.clear()
            if isinstance(self.credentials, CredentialService):
                self.credentials.evict()
            async for message in messages:
                action = message.get("action")
                if action == "cancel":
                    self.executor.cancel_local(message.get("execution_id", ""))
                elif action == "triggers_changed":
                    for listener in self.trigger_listeners:
                        listener(str(message.get("workflow_id", "")))
                elif action == "credentials_changed":
                    if isinstance(self.credentials, CredentialService):
                        names = message.get("names")
                        self.credentials.evict(names if isinstance(names, list) else None)
                else:
                    self.authenticator.handle_control(message)
