"""Advances runs: ready-set scheduling, branches, retries, timeouts, checkpoints, events.

`Executor.advance(execution_id)` takes the run's lease (or finds it taken by the
run's own INSERT: `Executor.lease_new_run`), drives the run as far as it can go
(to its end, or until it parks on a long delay) and gives the lease back.
Everything the run does is checkpointed in the store before anything that
depends on it starts, so any process can pick a run up where another one died:
completed nodes are never run again, a node that was running is run again with
its attempt count raised.

The engine does no I/O of its own: it talks to the store, the event bus and
the nodes' clients through the ports it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from pydantic import ValidationError

from ductwork.engine import templating
from ductwork.engine.admission import AdmissionControl, run_limits
from ductwork.engine.budget import RunBudget
from ductwork.engine.graph import ERROR_BRANCH, NodePlan, Plan, WorkflowInvalid, build_plan
from ductwork.engine.limits import number
from ductwork.engine.loop import GraphScope, run_items
from ductwork.engine.references import CredentialUse, node_credential_uses
from ductwork.engine.templating import TemplateFailure
from ductwork.events.base import EventBus
from ductwork.jsonvalues import dotted, find_problem, nesting_at_least
from ductwork.models import (
    Checkpoint,
    EdgeSpec,
    Event,
    EventType,
    NodeState,
    NodeStatus,
    Run,
    RunStatus,
    WorkflowDefinition,
    utcnow,
)
from ductwork.nodes.base import (
    ItemOutcome,
    NodeConfig,
    NodeError,
    NodeResult,
    NodeServices,
    NodeType,
    RetryableError,
)
from ductwork.security.credential_types import (
    Credential,
    CredentialSource,
    CredentialUnusable,
    secret_value,
)
from ductwork.security.redaction import ACTIVE, EMPTY, Redactor, install_log_filter
from ductwork.settings import Settings
from ductwork.store.base import LeaseLost, PartialCheckpoint, Store, UnstorableValue

if TYPE_CHECKING:
    from ductwork.triggers.resume import ResumeLinks

log = logging.getLogger("ductwork.executor")

RUNNING_COMMIT_DELAY = 0.005
"""A quick node's `running` state rides along with its `completed` commit; a slow
one's is committed after this many seconds (so watchers and crash recovery see it)."""


def wants_error_workflow(run: Run) -> bool:
    """Whether failing `run` must start its workflow's error workflow (`triggers/errors.py`).

    Only when its definition names one, and never for a run an error workflow
    started: an error workflow's own failure starts nothing (no loop on itself, no
    A -> B -> A chain).
    """
    return run.definition.error_workflow_id is not None and (
        run.trigger is None or run.trigger.get("type") != "error"
    )


def failed_run_fields(run: Run, **fields: Any) -> dict[str, Any]:
    """The run fields of the commit that fails `run`: status `error` and `fields`, plus
    the error-workflow outbox flag when it must start one, so a process dying right
    after this commit loses nothing (the sweep finds the flag; see triggers/errors.py)."""
    failed: dict[str, Any] = {**fields, "status": RunStatus.ERROR}
    if wants_error_workflow(run):
        failed["error_workflow_pending"] = True
    return failed


def default_owner(name: str | None = None) -> str:
    """A lease owner unique to this process: a name (default the host), pid and a random suffix.

    Never just the configured name: a restarted worker with the same name must not
    mistake its predecessor's leases for its own while that one might still live.
    """
    return f"{name or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


LARGE_WORKFLOW_NODES = 200
"""Workflows with more nodes are validated and planned on a worker thread: a
10,000-node plan takes seconds, which must not stall other runs' heartbeats."""

_T = TypeVar("_T")


async def off_loop_if_large(
    definition: WorkflowDefinition, work: Callable[..., _T], *args: Any
) -> _T:
    """`work(*args)`, on a thread when `definition` is large enough to hold the loop up."""
    if len(definition.nodes) > LARGE_WORKFLOW_NODES:
        return await asyncio.to_thread(work, *args)
    return work(*args)


@dataclass(frozen=True, slots=True)
class PlanCredentials:
    """The credentials a plan refers to: computed once per plan, cached with it."""

    names: frozenset[str]
    """Every name to load for a run (`secrets.X` anywhere, each node's `credential`)."""
    secrets_by_node: Mapping[str, tuple[CredentialUse, ...]]
    """Per node, the `secrets.X` it reads (only nodes that read any)."""


def plan_credentials(plan: Plan) -> PlanCredentials:
    """What `plan` refers to; see `references.credential_names` (the same reading)."""
    names: set[str] = set()
    by_node: dict[str, tuple[CredentialUse, ...]] = {}
    for node in plan.walk():  # loop bodies' nodes too: they run with the same credentials
        node_id = node.id
        config = node.spec.config
        node_type = node.node_type
        uses = node_credential_uses(
            config, node_type.expression_fields_for(config), node_type.raw_fields
        )
        names.update(use.name for use in uses)
        secrets = tuple(use for use in uses if use.via_secrets)
        if secrets:
            by_node[node_id] = secrets
    return PlanCredentials(frozenset(names), by_node)


def _build(
    definition: WorkflowDefinition, registry: Mapping[str, NodeType[Any]]
) -> tuple[Plan, PlanCredentials]:
    plan = build_plan(definition, registry)
    for node in plan.walk():
        node.node_type.prepare()
    return plan, plan_credentials(plan)


class PlanCache:
    """Validated plans per (workflow id, version): built once, reused by every run."""

    def __init__(self, registry: Mapping[str, NodeType[Any]], size: int = 512) -> None:
        self._registry = registry
        self._size = size
        self._plans: OrderedDict[tuple[str, int], tuple[Plan, PlanCredentials]] = OrderedDict()

    async def get(self, run: Run) -> Plan:
        """The run's plan."""
        return (await self.get_with_credentials(run))[0]

    async def get_with_credentials(self, run: Run) -> tuple[Plan, PlanCredentials]:
        """The run's plan and the credentials it refers to."""
        key = (run.workflow_id, run.workflow_version)
        entry = self._plans.get(key)
        if entry is None:
            entry = await off_loop_if_large(run.definition, _build, run.definition, self._registry)
            self._plans[key] = entry
            if len(self._plans) > self._size:
                self._plans.popitem(last=False)
        else:
            self._plans.move_to_end(key)
        return entry


class GroupCommitter:
    """Commits the checkpoints of every run that flushes in the same loop tick together.

    Each run still flushes on its own schedule; the store sees one transaction
    for all of them (`Store.checkpoint_many`), which under load is most of the
    cost of a transition. One batch is in flight at a time; what arrives
    meanwhile forms the next. A failed batch is retried run by run, so one bad
    checkpoint fails only its own run.
    """

    def __init__(self, store: Store, owner: str | None = None) -> None:
        """`owner`: fence every write with this lease owner (see `Store.checkpoint`)."""
        self._store = store
        self._owner = owner
        self._pending: list[tuple[str, Checkpoint, asyncio.Future[None]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def commit(self, execution_id: str, checkpoint: Checkpoint) -> None:
        """Commit with the other runs flushing now; raises what the store raised.

        Cancelling the caller does not cancel the write (the drain task makes it for
        the whole batch). A caller cancelled while its write is in flight waits for the
        outcome: it gets CancelledAfterCommit when the write landed (so it never puts
        back, and writes twice, a checkpoint that was applied), else what it was.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((execution_id, checkpoint, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._drain())
        try:
            await asyncio.shield(future)
        except asyncio.CancelledError:
            while not future.done():
                # Cancelled again, or the write failed: the outcome decides what to raise,
                # and a cancelled caller is told it was cancelled either way.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(future)
            if not future.cancelled() and future.exception() is None:
                raise CancelledAfterCommit from None
            raise

    async def landed(self, execution_id: str, checkpoint: Checkpoint) -> bool:
        """Whether `checkpoint` is in the store already (an attempt that failed without
        saying whether it committed): the run holds its last event, and the lease is
        still this owner's, or given up when the checkpoint gives it up (a terminal
        commit). A run's commits are serialised and its seqs increase, so a `last_seq`
        this high means this very checkpoint landed."""
        if not checkpoint.events:
            return False
        run = await self._store.get_run(execution_id, with_events=False, with_node_states=False)
        if run is None or run.last_seq < max(event.seq for event in checkpoint.events):
            return False
        if "lease_owner" in checkpoint.run_fields:
            return run.lease_owner is None
        return self._owner is None or run.lease_owner == self._owner

    async def _drain(self) -> None:
        # A new task first runs on the loop's next iteration, so every run that
        # flushes in this one has added its checkpoint by then.
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                if len(batch) == 1:
                    await self._store.checkpoint(batch[0][0], batch[0][1], owner=self._owner)
                else:
                    await self._store.checkpoint_many(
                        [(e, c) for e, c, _ in batch], owner=self._owner
                    )
            except PartialCheckpoint as partial:
                # The store applied every run but these: never apply those others twice.
                for execution_id, _, future in batch:
                    _settle(future, partial.failures.get(execution_id))
                continue
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][2], exc)
                    continue
                # Nothing of the batch was applied: try run by run, so one bad
                # checkpoint fails only its own run.
                for execution_id, checkpoint, future in batch:
                    try:
                        await self._store.checkpoint(execution_id, checkpoint, owner=self._owner)
                    except Exception as single:
                        _settle(future, single)
                    else:
                        _settle(future, None)
                continue
            for _, _, future in batch:
                _settle(future, None)


class CancelledAfterCommit(asyncio.CancelledError):
    """The flush was cancelled, but its checkpoint had been applied already."""


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


class CheckpointUnavailable(Exception):
    """The store refused a run's checkpoint for longer than a lease lasts.

    The run stops where it is, without writing, and is resumed from its last
    checkpoint once a worker can reach the store again.
    """


FLUSH_RETRY_FIRST_DELAY = 0.05
FLUSH_RETRY_MAX_DELAY = 1.0


class _Checkpointer:
    """Collects a run's changes and writes them in as few commits as possible.

    Changes made in the same loop tick share one commit (group commit). Flushes
    are serialised, so a later state of a node never lands before an earlier one.
    A commit that fails keeps its changes due: they are merged back under the
    newer ones and retried with backoff, for at most `give_up_after` seconds
    (then `CheckpointUnavailable`; nothing is dropped, the run just stops).
    Events are published to live subscribers only after they are committed, in
    order, by a background pump: the run does not wait for the bus.
    """

    def __init__(
        self,
        store: GroupCommitter,
        bus: EventBus,
        execution_id: str,
        on_commit: Callable[[Sequence[Event]], None] | None = None,
        on_lease_lost: Callable[[], None] | None = None,
        *,
        give_up_after: float = 15.0,
        on_unavailable: Callable[[CheckpointUnavailable], None] | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._on_commit = on_commit
        self._on_lease_lost = on_lease_lost
        self._on_unavailable = on_unavailable
        self._give_up_after = give_up_after
        self._execution_id = execution_id
        self._pending = Checkpoint()
        self._lock = asyncio.Lock()
        self._timer: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._unpublished: deque[Event] = deque()
        self._pump: asyncio.Task[None] | None = None

    def node(self, node_id: str, state: NodeState) -> None:
        self._pending.node_states[node_id] = state

    def event(self, event: Event) -> None:
        self._pending.events.append(event)

    def output_json(self, key: str, output: Any, encoded: bytes) -> None:
        """The JSON of node `key`'s output, for the store (`Checkpoint.output_json`)."""
        self._pending.output_json[key] = (output, encoded)

    def run_fields(self, **fields: Any) -> None:
        self._pending.run_fields.update(fields)

    def settles_a_node(self) -> bool:
        """Whether a change due settles a node: it must be committed before anything that
        depends on the node starts. Anything else (the run's start, `running` states)
        may ride along with the next commit (DESIGN.md, Hot paths)."""
        return any(state.status.settled for state in self._pending.node_states.values())

    def discard_pending(self) -> Checkpoint:
        """Drop the changes not yet committed (a run being failed for good); returns them."""
        dropped, self._pending = self._pending, Checkpoint()
        return dropped

    def flush_later(self, delay: float = RUNNING_COMMIT_DELAY) -> None:
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(delay, self._flush_in_background)

    def _flush_in_background(self) -> None:
        self._timer = None
        if not self._pending:
            # A quick node's running state went with its completion already: a task
            # (and a lock round) per node for nothing.
            return
        task = asyncio.get_running_loop().create_task(self._flush_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _flush_quietly(self) -> None:
        # A lost lease is reported through on_lease_lost, a store that stays down
        # through on_unavailable; whatever did not commit is still due and goes
        # with the run's next flush.
        try:
            await self.flush()
        except (LeaseLost, CheckpointUnavailable):
            pass
        except Exception:
            log.warning("background checkpoint of run %s failed", self._execution_id, exc_info=True)

    def _keep_due(self, batch: Checkpoint) -> None:
        """Put a batch that did not commit back, under the changes made since."""
        newer = self._pending
        batch.node_states.update(newer.node_states)
        batch.events.extend(newer.events)
        batch.run_fields.update(newer.run_fields)
        batch.output_json.update(newer.output_json)
        self._pending = batch

    async def flush(self) -> None:
        """Commit what is due; on failure it stays due (see the class docstring)."""
        async with self._lock:
            batch, self._pending = self._pending, Checkpoint()
            if not batch:
                return
            try:
                await self._commit(batch)
            except LeaseLost:
                if self._on_lease_lost is not None:
                    self._on_lease_lost()
                raise
            except CancelledAfterCommit:
                # The batch landed: it must not be put back (it would be written twice).
                self._committed(batch)
                raise
            except BaseException:
                self._keep_due(batch)
                raise
        self._committed(batch)

    def _committed(self, batch: Checkpoint) -> None:
        if batch.events:
            if self._on_commit is not None:
                self._on_commit(batch.events)
            self.publish(batch.events)

    async def _commit(self, batch: Checkpoint) -> None:
        """Commit, retrying a store that fails with backoff until `give_up_after`."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._give_up_after
        delay = FLUSH_RETRY_FIRST_DELAY
        retried = False
        while True:
            try:
                await self._store.commit(self._execution_id, batch)
                return
            except UnstorableValue:
                raise  # retrying cannot help
            except Exception as exc:
                # An attempt that failed may still have committed (a connection lost
                # during COMMIT): its retry then meets its own writes (a duplicate seq,
                # or the lease a terminal commit gave up). Landed is committed.
                if retried and await self._landed(batch):
                    return
                if isinstance(exc, LeaseLost):
                    raise  # retrying cannot help
                retried = True
                if loop.time() + delay > give_up_at:
                    unavailable = CheckpointUnavailable(
                        f"the store refused checkpoints of run {self._execution_id} for "
                        f"{self._give_up_after:g} s: {type(exc).__name__}: {exc}"
                    )
                    if self._on_unavailable is not None:
                        self._on_unavailable(unavailable)
                    raise unavailable from exc
                log.warning(
                    "checkpoint of run %s failed (%s: %s); retrying in %.2f s",
                    self._execution_id,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(delay * 2, FLUSH_RETRY_MAX_DELAY)

    async def _landed(self, batch: Checkpoint) -> bool:
        try:
            return await self._store.landed(self._execution_id, batch)
        except Exception:  # the store is still down: not known to have landed
            return False

    def publish(self, events: list[Event]) -> None:
        """Hand events to live subscribers, in order, without waiting for the bus."""
        self._unpublished.extend(events)
        if self._pump is None or self._pump.done():
            self._pump = asyncio.get_running_loop().create_task(self._publish_pending())

    async def _publish_pending(self) -> None:
        while self._unpublished:
            # Everything committed so far goes out as one message.
            events = list(self._unpublished)
            self._unpublished.clear()
            try:
                await self._bus.publish_many(self._execution_id, events)
            except Exception:  # best effort: subscribers can replay from the store
                log.exception("publishing events of run %s failed", self._execution_id)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def drain(self) -> None:
        """Wait until every committed event has been handed to the bus."""
        while self._pump is not None and not self._pump.done():
            await asyncio.shield(self._pump)


@dataclass(slots=True)
class _NodeContext:
    """The `NodeContext` a node's `run` receives."""

    driver: _RunDriver
    node_id: str
    """The node's key in the run: its id, or `id[3]` in item 3 of a loop body."""
    attempt: int
    input: Any
    names: Mapping[str, Any]
    scope: GraphScope
    """The graph the node runs in: the run's (the driver) or one loop item's."""
    node: NodePlan

    @property
    def execution_id(self) -> str:
        return self.driver.run.execution_id

    @property
    def workflow_id(self) -> str:
        return self.driver.run.workflow_id

    @property
    def idempotency_key(self) -> str:
        return f"{self.driver.run.execution_id}:{self.node_id}"

    @property
    def services(self) -> NodeServices:
        return self.driver.executor.services

    def log(self, message: str, level: str = "info") -> None:
        message = clean_message(self.driver.redactor.text(message))
        self.driver.emit("log", self.node_id, message=message, level=level)
        self.driver.checkpointer.flush_later()

    def emit_token(self, text: str) -> None:
        # A secret split across two deltas is not recognised (see security/redaction.py);
        # the stored output, masked whole, is what a client gets when the node completes.
        self.driver.publish_ephemeral("token", self.node_id, text=self.driver.redactor.text(text))

    @property
    def depth(self) -> int:
        return self.driver.run.depth

    def redact(self, value: Any) -> Any:
        redactor = self.driver.redactor
        return redactor.value(value) if redactor else value

    async def check_budget(self, estimated_cost: float) -> None:
        await self.driver.check_budget(self.node_id, estimated_cost)

    async def run_items(
        self, items: Sequence[Any], *, concurrency: int, stop_on_error: bool
    ) -> list[ItemOutcome]:
        if not self.node.node_type.has_body:
            raise NodeError(f"a {self.node.spec.type} node has no body to run items through")
        return await run_items(
            self.driver,
            self.scope,
            self.node,
            items,
            concurrency=concurrency,
            stop_on_error=stop_on_error,
        )

    def credential(
        self, name: str, types: Collection[str], field: str = "config.credential"
    ) -> Credential:
        """The run's credential `name`, of one of `types`; NodeError naming `field` otherwise."""
        credentials = self.driver.credentials
        found = credentials.get(name)
        if found is None:
            if self.driver.executor.credentials is None:
                raise NodeError(f"{field}: no credential store is configured to hold {name!r}")
            raise NodeError(f"{field}: no credential named {name!r} (was it deleted?)")
        if found.type not in types:
            expected = ", ".join(sorted(types))
            raise NodeError(
                f"{field}: credential {name!r} is of type {found.type!r}; this node needs "
                f"one of: {expected}"
            )
        return found


def _set_path(
    data: Any, path: tuple[str | int, ...], value: Any, copied: set[tuple[str | int, ...]]
) -> None:
    """Set `value` at `path` in `data` (a copy of the spec's config), copying each
    container on the way the first time (`copied`): the spec itself is never written."""
    for depth, key in enumerate(path[:-1], start=1):
        child = data[key]
        prefix = path[:depth]
        if prefix not in copied:
            child = data[key] = list(child) if isinstance(child, list) else dict(child)
            copied.add(prefix)
        data = child
    data[path[-1]] = value


def _failure(exc: BaseException) -> NodeError:
    if isinstance(exc, NodeError):
        return exc
    if isinstance(exc, TemplateFailure):
        return NodeError(str(exc))
    if isinstance(exc, TimeoutError):
        return RetryableError(str(exc) or "timed out")
    return NodeError(f"{type(exc).__name__}: {exc}")


MAX_OUTPUT_DEPTH = 90
"""Deepest nesting of a stored output: MongoDB refuses documents past 100 levels, and an
output sits a few levels down in its run document."""


MAX_ERROR_CHARS = 4000


def clean_message(text: str) -> str:
    """An error or log text fit for every store: no NUL characters, bounded length."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + f"... ({len(text) - MAX_ERROR_CHARS} more characters)"
    return text


def _raw_secret_values(credentials: Mapping[str, Credential], settings: Settings) -> list[str]:
    """Every secret a run could hold, gathered without trusting `secret_values()`:
    for masking the error of a run whose driver (and redactor) could not be built."""
    values: list[str] = []
    for credential in credentials.values():
        data = credential.data
        values.extend(
            value
            for value in (getattr(data, name, None) for name in data.secret_fields)
            if isinstance(value, str) and value
        )
        # When it fails, the raw fields above are masked all the same.
        with contextlib.suppress(Exception):
            values.extend(data.secret_values())
    values.extend(secret.get_secret_value() for secret in settings.secrets.values())
    return values


_TEXT_FREE_EVENTS = frozenset({"node_started", "node_completed", "run_started"})
"""Events whose text the engine writes itself (node type, workflow id) or masked already
(a completed node's output): `emit` does not search them."""


class _Signal(asyncio.Event):
    """An asyncio.Event that also calls `on_set` when set: the drive loop is woken by it
    directly instead of by a task per run waiting on the event."""

    def __init__(self) -> None:
        super().__init__()
        self.on_set: Callable[[], None] | None = None

    def set(self) -> None:
        super().set()
        if self.on_set is not None:
            self.on_set()


class _RunDriver:
    """Drives one run during one `advance` call."""

    def __init__(
        self,
        executor: Executor,
        run: Run,
        plan: Plan,
        plan_credentials: PlanCredentials | None = None,
        credentials: Mapping[str, Credential] | None = None,
        leased_at: float | None = None,
    ) -> None:
        self.executor = executor
        self.run = run
        self.leased_at = leased_at
        """Loop time the run's lease was set (None: as the drive starts); the first
        renewal is due a heartbeat after it."""
        self.plan = plan
        self.plan_credentials = plan_credentials or PlanCredentials(frozenset(), {})
        self.credentials: Mapping[str, Credential] = credentials or {}
        self.checkpointer = _Checkpointer(
            executor.committer,
            executor.bus,
            run.execution_id,
            executor.on_commit,
            on_lease_lost=self._lose_lease,
            give_up_after=executor.settings.lease_seconds,
            on_unavailable=self._lose_store,
        )
        self.states: dict[str, NodeState] = {
            node_id: run.node_states.get(node_id) or NodeState() for node_id in plan.order
        }
        self.outputs: dict[str, Any] = {
            node_id: state.output
            for node_id, state in self.states.items()
            if state.status is NodeStatus.COMPLETED
            or (state.status is NodeStatus.FAILED and plan.nodes[node_id].spec.on_error != "fail")
        }
        self.last_seq = run.last_seq
        self.tasks: dict[asyncio.Task[None], str] = {}
        self.finished_tasks: deque[asyncio.Task[None]] = deque()
        """Node tasks of the run's graph that ended and `_drive` has not looked at yet."""
        self._wakeup: asyncio.Future[None] | None = None
        self.ready: deque[str] = deque()
        self.unsettled: dict[str, int] = {}
        self.fired_early: set[str] = set()
        """Nodes queued before all their predecessors settled (`NodeType.fires_early`)."""
        self.failed_node: str | None = None
        self.cancel_event = _Signal()
        """Set to stop the run (a cancel, a lost lease); wakes `_drive` when set."""
        self._heartbeat_task: asyncio.Task[None] | None = None
        self.lease_lost = False
        self.lease_released = False
        """The run's terminal commit gave the lease up (`_finish`): nothing to release."""
        self.redrives = run.redrives
        """Re-drives without progress: a node completing shows the run is not poison."""
        self.store_failure: CheckpointUnavailable | None = None
        self.limit_failure: str | None = None
        """Why a run-wide limit (events, wall clock) stops the run; it then fails with this."""
        self.max_events = executor.settings.max_run_events
        self.deadline: datetime | None = None
        """DUCTWORK_MAX_RUN_SECONDS after the run started (set when it is driven)."""
        self.stored_output_bytes = 0
        self.budget = RunBudget(run, executor.store, executor.settings.llm_prices)
        """Usage and cost so far, and the workflow's budgets (engine/budget.py)."""
        self.secrets, secret_values = self._secrets(executor.settings)
        self.secret_values = secret_values
        self.redactor: Redactor = Redactor(secret_values) if secret_values else EMPTY
        self.run_info: dict[str, Any] = {
            "id": run.execution_id,
            "execution_id": run.execution_id,
            "workflow_id": run.workflow_id,
            "started_at": (run.start_time or utcnow()).isoformat(),
            "trigger": run.trigger,
        }
        self.run_info.update(self._resume_urls(executor.services.resume_links))
        self.base_names: dict[str, Any] = {
            **run.variables,
            "outputs": self.outputs,
            "run": self.run_info,
            "secrets": self.secrets,
        }

    def _resume_urls(self, links: ResumeLinks | None) -> dict[str, Any]:
        """`run.resume_urls.<id>` for every node that waits to be resumed, and
        `run.resume_url` for the first of them: links are derived from (run, node), so
        nodes before the wait can send them."""
        if links is None:
            return {}
        nodes = self.plan.nodes
        waits = [node_id for node_id in self.plan.order if nodes[node_id].node_type.resumable]
        if not waits:
            return {}
        urls = links.urls(self.run.execution_id, waits)
        return {"resume_url": urls[waits[0]], "resume_urls": urls}

    def _secrets(self, settings: Settings) -> tuple[dict[str, str], list[str]]:
        """(`secrets` for templates, every secret value the run holds, to mask).

        Only the names the plan refers to: a stored `secret` credential, else the
        DUCTWORK_SECRETS entry of that name. Every loaded credential's secret values
        are masked, whatever its type.
        """
        secrets: dict[str, str] = {}
        values: list[str] = []
        for credential in self.credentials.values():
            values.extend(credential.data.secret_values())
        for name in self.plan_credentials.names:
            value = secret_value(name, self.credentials, settings.secrets)
            if value is not None:
                secrets[name] = value
                if name not in self.credentials:  # a stored one's values are listed above
                    values.append(value)
        return secrets, values

    async def check_budget(self, node_id: str, estimated_cost: float) -> None:
        """Refuse a call that could take the run or workflow past a budget: a NodeError
        that is not retried, raised before the node makes the call."""
        refusal = await self.budget.refusal(node_id, estimated_cost)
        if refusal is not None:
            raise NodeError(refusal, retryable=False)

    def mask(self, text: str) -> str:
        """`text` with the run's secrets masked, fit for every store (see clean_message)."""
        return clean_message(self.redactor.text(text))

    def _lose_lease(self) -> None:
        """Another worker holds the run now: stop, and write nothing more."""
        self.lease_lost = True
        self.cancel_event.set()

    def _lose_store(self, failure: CheckpointUnavailable) -> None:
        """The store stayed down: stop; the run resumes from its last checkpoint later."""
        self.store_failure = failure
        self.cancel_event.set()

    def _stop_for_limit(self, message: str) -> None:
        """A run-wide limit is reached: stop, and fail the run with `message`."""
        if self.limit_failure is None:
            self.limit_failure = message
            self.cancel_event.set()

    # Events -----------------------------------------------------------------------
    def emit(self, type_: EventType, node_id: str | None = None, **data: Any) -> None:
        if self.redactor and type_ not in _TEXT_FREE_EVENTS:
            # Outputs are masked when the node completes; what else an event carries
            # (errors, log lines, reasons) is text.
            for key, value in data.items():
                if isinstance(value, str):
                    data[key] = self.redactor.text(value)
        self.last_seq += 1
        self.checkpointer.event(
            Event(seq=self.last_seq, type=type_, node_id=node_id, timestamp=utcnow(), data=data)
        )
        if self.last_seq > self.max_events:
            # Every event is still stored (nothing is dropped); the run stops here and
            # only the events that end it follow.
            self._stop_for_limit(
                f"the run wrote more than {self.max_events} events "
                "(the limit set by DUCTWORK_MAX_RUN_EVENTS)"
            )

    def publish_ephemeral(self, type_: EventType, node_id: str | None, **data: Any) -> None:
        """Events too fine-grained to store (token deltas): published live, in order.

        They carry the seq of the last stored event, so a client resuming by seq
        skips none of the stored ones. Their text is masked by the caller.
        """
        self.checkpointer.publish(
            [Event(seq=self.last_seq, type=type_, node_id=node_id, timestamp=utcnow(), data=data)]
        )

    def set_state(self, node_id: str, state: NodeState) -> None:
        self.states[node_id] = state
        self.checkpointer.node(node_id, state)

    # The run's top-level graph is a GraphScope too (engine/loop.py): a loop item's body
    # nodes go through the same node-running path, keyed `id[index]`.
    suffix = ""

    def key(self, node_id: str) -> str:
        """A top-level node's key in the run is its id."""
        return node_id

    def entry_input(self) -> Any:
        """What a node without incoming edges gets as `input`: the run's inputs."""
        return self.run.variables

    def set_scoped_state(self, key: str, state: NodeState) -> None:
        """Record the state of a loop item's node (`b[3]`) or item (`loop[3]`).

        Kept in the run's snapshot of stored states as well, so a loop node run again
        in this drive (a retry) finds what its items already did.
        """
        self.run.node_states[key] = state
        self.checkpointer.node(key, state)

    def _set(self, scope: GraphScope, node_id: str, state: NodeState) -> None:
        if scope is self:
            self.set_state(node_id, state)
        else:
            scope.states[node_id] = state
            self.set_scoped_state(scope.key(node_id), state)

    # Graph bookkeeping ----------------------------------------------------------------
    def _edge_active(self, edge: EdgeSpec, scope: GraphScope | None = None) -> bool:
        graph = self if scope is None else scope
        source = graph.states[edge.source]
        if source.status is NodeStatus.COMPLETED:
            return edge.branch is None or edge.branch == source.branch
        if source.status is NodeStatus.FAILED:
            on_error = graph.plan.nodes[edge.source].spec.on_error
            if on_error == "branch":
                return edge.branch == ERROR_BRANCH
            if on_error == "continue":
                return edge.branch is None or edge.branch == ERROR_BRANCH
        return False

    def _input_for(self, node: NodePlan, scope: GraphScope | None = None) -> Any:
        graph = self if scope is None else scope
        if not node.incoming:
            return graph.entry_input()
        sources = [e.source for e in node.incoming if self._edge_active(e, graph)]
        sources = list(dict.fromkeys(sources))
        outputs = graph.outputs
        if node.node_type.keyed_input:
            if node.node_type.fires_early(node.config):
                # Completed branches first (stable: edge order within each): a branch that
                # failed with on_error continue (output null) is not the first to complete.
                states = graph.states
                sources.sort(key=lambda source: states[source].status is not NodeStatus.COMPLETED)
            return {source: outputs.get(source) for source in sources}
        if len(sources) == 1:
            return outputs.get(sources[0])
        return {source: outputs.get(source) for source in sources}

    def _settle(self, node_id: str, scope: GraphScope | None = None) -> None:
        graph = self if scope is None else scope
        for successor in dict.fromkeys(e.target for e in graph.plan.nodes[node_id].outgoing):
            graph.unsettled[successor] -= 1
            if (
                graph.states[successor].status is not NodeStatus.PENDING
                or successor in graph.fired_early
            ):
                continue
            if graph.unsettled[successor] == 0:
                graph.ready.append(successor)
            elif self._fires_early(successor, graph):
                # Queued before its other predecessors settle: it must not be queued again
                # when they do (its task may not have marked it running yet).
                graph.fired_early.add(successor)
                graph.ready.append(successor)

    def _fires_early(self, node_id: str, scope: GraphScope | None = None) -> bool:
        """Whether a node waiting for predecessors may run now (`NodeType.fires_early`):
        a predecessor COMPLETED along an active edge (a failed one, even with on_error
        continue, is not a branch that completed)."""
        graph = self if scope is None else scope
        node = graph.plan.nodes[node_id]
        return node.node_type.fires_early(node.config) and any(
            graph.states[edge.source].status is NodeStatus.COMPLETED
            and self._edge_active(edge, graph)
            for edge in node.incoming
        )

    def _prepare(self) -> None:
        """Rebuild the ready set from stored states (also after a crash)."""
        now = utcnow()
        # Everything the run's document holds counts, loop items' body outputs and
        # records (`b[3]`, `loop[3]`) included: a drive resumed after a crash must not
        # store another full DUCTWORK_MAX_RUN_OUTPUT_BYTES on top of them.
        self.stored_output_bytes = sum(
            len(orjson.dumps(state.output))
            for state in self.run.node_states.values()
            if state.output is not None
        )
        for node_id, state in self.states.items():
            if state.status is NodeStatus.RUNNING:
                # Its worker died mid-flight: run it again; attempts already counts the cut one.
                self.emit(
                    "log",
                    node_id,
                    level="warning",
                    message=f"node was running (attempt {state.attempts}) when its worker "
                    "stopped; running it again",
                )
                self.set_state(node_id, state.model_copy(update={"status": NodeStatus.PENDING}))
            elif state.status is NodeStatus.WAITING:
                self._wake(node_id, state, now)
        for node_id, node in self.plan.nodes.items():
            self.unsettled[node_id] = sum(
                1 for pred in node.predecessors if not self.states[pred].status.settled
            )
        for node_id in self.plan.order:
            if self.states[node_id].status is not NodeStatus.PENDING:
                continue
            if self.unsettled[node_id] == 0:
                self.ready.append(node_id)
            elif self._fires_early(node_id):
                self.fired_early.add(node_id)
                self.ready.append(node_id)

    def _wake(self, node_id: str, state: NodeState, now: datetime) -> None:
        """End a parked node whose wait is over (a delay that is due, a wait node that was
        resumed or timed out: its type's `wake` decides). Called while the ready set is
        rebuilt, so successors are not settled here: their counts are taken afterwards."""
        try:
            result = self.plan.nodes[node_id].node_type.wake(state, now)
            if result is None:
                return
            result.output, size = self._check_output(result.output)
        except Exception as exc:
            error = _failure(exc)
            if not isinstance(exc, NodeError):
                log.exception("waking node %s of run %s raised", node_id, self.run.execution_id)
            self._fail(
                node_id,
                state.attempts,
                self.mask(str(error)),
                state.latency_ms or 0.0,
                settle=False,
            )
            return
        self.stored_output_bytes += size
        self._complete(node_id, state, result, resumed=True)

    def _schedule(self, scope: GraphScope | None = None) -> None:
        """Start the ready nodes of `scope` (default: the run's graph), skip inactive ones."""
        graph = self if scope is None else scope
        limit = self.executor.settings.max_parallel_nodes
        ready, tasks = graph.ready, graph.tasks
        while ready and len(tasks) < limit and graph.failed_node is None:
            node_id = ready.popleft()
            node = graph.plan.nodes[node_id]
            if node.incoming and not any(self._edge_active(e, graph) for e in node.incoming):
                now = utcnow()
                self._set(
                    graph,
                    node_id,
                    NodeState(status=NodeStatus.SKIPPED, started_at=now, finished_at=now),
                )
                self.emit("node_skipped", graph.key(node_id), reason="no active incoming edge")
                self._settle(node_id, graph)
                continue
            task = asyncio.get_running_loop().create_task(self._run_node(node, graph))
            tasks[task] = node_id
            if graph is self:
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A node task of the run's graph ended: wake `_drive`."""
        self.finished_tasks.append(task)
        self._wake_drive()

    def _wake_drive(self) -> None:
        """Wake `_drive` (a node task ended, or `cancel_event` was set)."""
        wakeup = self._wakeup
        if wakeup is not None and not wakeup.done():
            wakeup.set_result(None)

    # Running one node -----------------------------------------------------------------
    def _config_for(self, node: NodePlan, names: Mapping[str, Any]) -> NodeConfig:
        if not node.templates:
            return node.config
        # Copied only along the templated paths: the rest is shared with the spec, as a
        # config without templates is shared whole (`node.config`; nodes never change it).
        raw = dict(node.spec.config)
        copied: set[tuple[str | int, ...]] = set()
        # One budget for all of a node's fields: limits cannot be dodged by splitting a bomb.
        with templating.limits():
            for item in node.templates:
                try:
                    _set_path(raw, item.path, item.template.render(names), copied)
                except TemplateFailure as exc:
                    field = "config." + ".".join(str(p) for p in item.path)
                    raise NodeError(f"{field}: {exc}") from None
        try:
            config: NodeConfig = node.node_type.config_model.model_validate(raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"config.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                for err in exc.errors(include_url=False)
            )
            raise NodeError(f"config after rendering templates is invalid: {problems}") from None
        return config

    async def _run_node(self, node: NodePlan, scope: GraphScope | None = None) -> None:
        """Run one node (retries, timeout, output checks) in `scope` (default: the run's
        graph; a loop item's for body nodes, whose states and events use `id[index]`)."""
        graph = self if scope is None else scope
        node_id = node.id
        key = graph.key(node_id)
        spec = node.spec
        retry = spec.retry
        max_attempts = retry.max_attempts if retry else 1
        timeout = spec.timeout_seconds or self.executor.settings.default_node_timeout_seconds
        started = time.perf_counter()
        state = graph.states[node_id]
        started_at = utcnow()
        attempt = state.attempts
        while True:
            attempt += 1
            self._set(
                graph,
                node_id,
                NodeState(status=NodeStatus.RUNNING, attempts=attempt, started_at=started_at),
            )
            self.emit("node_started", key, type=spec.type, attempt=attempt)
            if node.node_type.side_effects:
                await self.checkpointer.flush()
            else:
                self.checkpointer.flush_later()
            input_value = self._input_for(node, graph)
            # `outputs` as a plain dict of this moment: a template may hand it on whole
            # (`{{ outputs }}` as an output would otherwise contain itself once stored,
            # and a loop body's is a ChainMap, which is not JSON).
            names = {**graph.base_names, "outputs": dict(graph.outputs), "input": input_value}
            ctx = _NodeContext(self, key, attempt, input_value, names, graph, node)
            try:
                async with asyncio.timeout(timeout):
                    config = self._config_for(node, names)
                    result = await node.node_type.run(config, ctx)
                result.output, encoded = self._encode_output(result.output)
                if self.redactor and result.meta:
                    result.meta, _ = self.redactor.output(result.meta, orjson.dumps(result.meta))
            except asyncio.CancelledError:
                raise
            except TimeoutError:
                error: NodeError = RetryableError(f"timed out after {timeout:g} s")
            except Exception as exc:
                error = self._missing_secret(node_id, _failure(exc))
                self._count_spent(key, error.usage)
                if not isinstance(exc, NodeError | TemplateFailure):
                    log.exception("node %s of run %s raised", node_id, self.run.execution_id)
            else:
                self.stored_output_bytes += len(encoded)
                self._complete(
                    node_id,
                    graph.states[node_id],
                    result,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    scope=graph,
                    encoded=encoded,
                )
                return
            if error.retryable and attempt < max_attempts:
                assert retry is not None
                # The attempt is over: what it spent was counted above (`error.usage`), so
                # its estimates must not keep holding budget from the next attempt.
                self.budget.release(key)
                delay = retry.delay_before(attempt + 1)
                self.emit(
                    "node_retrying",
                    key,
                    attempt=attempt,
                    error=self.mask(str(error)),
                    delay_seconds=delay,
                )
                self.checkpointer.flush_later()
                await asyncio.sleep(delay)
                continue
            self._fail(
                node_id,
                attempt,
                self.mask(str(error)),
                (time.perf_counter() - started) * 1000,
                scope=graph,
            )
            return

    def _count_spent(self, node_id: str, usage: dict[str, Any] | None) -> None:
        """Count what a failed attempt spent (`NodeError.usage`) into the run's usage; it
        is committed with the attempt's failure or retry."""
        if usage is not None and self.budget.record(node_id, {"usage": usage}) is not None:
            self.checkpointer.run_fields(**self.budget.run_fields())

    def _missing_secret(self, node_id: str, error: NodeError) -> NodeError:
        """A clearer error when the node failed on a `secrets.X` the run does not hold."""
        uses = self.plan_credentials.secrets_by_node.get(node_id)
        if not uses or "undefined variable" not in str(error):
            return error
        for use in uses:
            if use.name in self.secrets:
                continue
            credential = self.credentials.get(use.name)
            if credential is not None:
                why = (
                    f"credential {use.name!r} is of type {credential.type!r}; templates read "
                    "only credentials of type 'secret'"
                )
            else:
                why = f"no credential (or DUCTWORK_SECRETS entry) named {use.name!r}"
            return NodeError(f"{use.field}: secrets.{use.name}: {why}")
        return error

    def _check_output(self, output: Any) -> tuple[Any, int]:
        """Refuse an output the run cannot store; returns it (secrets masked) and its JSON size."""
        output, encoded = self._encode_output(output)
        return output, len(encoded)

    def _encode_output(self, output: Any) -> tuple[Any, bytes]:
        """Refuse an output the run cannot store; returns it (secrets masked) and its JSON.

        One policy for every store: no NUL characters (PostgreSQL's JSONB cannot
        hold them), at most DUCTWORK_MAX_OUTPUT_BYTES per node and
        DUCTWORK_MAX_RUN_OUTPUT_BYTES for all of a run's outputs together (a
        MongoDB run document must stay under 16 MB).

        The run's secrets are masked here, so neither the store, the events nor
        downstream nodes ever see them: a node that needs a secret reads it
        through `secrets.X` or its `credential`, never from another node's output.
        The encoded bytes are searched once; only an output holding a secret is walked.
        They go on to the store with the node's state (`Checkpoint.output_json`), so an
        output is encoded once, not again for its row and its event.
        """
        settings = self.executor.settings
        limit = settings.max_output_bytes
        try:
            encoded = orjson.dumps(output)
        except TypeError as exc:
            raise NodeError(f"output is not JSON-serialisable: {exc}") from None
        if self.redactor:
            output, encoded = self.redactor.output(output, encoded)
        size = len(encoded)
        if size > limit:
            raise NodeError(f"output is {size} bytes, over DUCTWORK_MAX_OUTPUT_BYTES ({limit})")
        # The walk is only worth it when the encoded bytes hint at a problem: a NUL, or
        # nesting that deep (counted on the bytes: wide outputs were walked every time).
        if b"\\u0000" in encoded or nesting_at_least(encoded, MAX_OUTPUT_DEPTH):
            problem = find_problem(output, MAX_OUTPUT_DEPTH)
            if problem is not None:
                path, why = problem
                if why.startswith("nested"):
                    why = f"is nested more than {MAX_OUTPUT_DEPTH} levels deep"
                where = f"output.{dotted(path)}" if path else "output"
                raise NodeError(f"{where} {why}")
        run_limit = settings.max_run_output_bytes
        if self.stored_output_bytes + size > run_limit:
            raise NodeError(
                f"the run's outputs would total {self.stored_output_bytes + size} bytes, over "
                f"DUCTWORK_MAX_RUN_OUTPUT_BYTES ({run_limit})"
            )
        return output, encoded

    def _complete(
        self,
        node_id: str,
        state: NodeState,
        result: NodeResult,
        *,
        latency_ms: float | None = None,
        resumed: bool = False,
        scope: GraphScope | None = None,
        encoded: bytes | None = None,
    ) -> None:
        """Record a node's result: completed (or parked); `encoded`: its output's JSON."""
        now = utcnow()
        graph = self if scope is None else scope
        if graph is not self and (result.resumable or result.park_until is not None):
            # A parked item would hold its loop (and the run's worker) for the whole wait.
            self._fail(
                node_id,
                state.attempts,
                "a node in a loop body cannot park the run (a delay longer than "
                "DUCTWORK_DURABLE_DELAY_THRESHOLD_SECONDS, a wait): move it out of the loop",
                latency_ms or 0.0,
                scope=graph,
            )
            return
        if result.resumable:
            self._park_for_resume(node_id, state, result)
            return
        if result.park_until is not None:
            self._park(node_id, state, result, result.meta)
            self.emit(
                "log",
                node_id,
                level="info",
                message=f"waiting until {result.park_until.isoformat()}",
            )
            return
        latency = latency_ms if latency_ms is not None else state.latency_ms
        new_state = state.model_copy(
            update={
                "status": NodeStatus.COMPLETED,
                "output": result.output,
                "error": None,
                "cached": result.cached,
                "latency_ms": round(latency, 3) if latency is not None else None,
                "finished_at": now,
                "branch": result.branch,
                "meta": result.meta or state.meta,
            }
        )
        usage = self.budget.record(graph.key(node_id), new_state.meta)
        if usage is not None:
            # Priced (when the node left that to the price table) into the node's meta,
            # and the run's sums in the same commit as the node's state: a crash
            # neither loses nor double-counts what the node spent.
            new_state.meta = {**new_state.meta, "usage": usage.dump()}
            self.checkpointer.run_fields(**self.budget.run_fields())
        self._set(graph, node_id, new_state)
        if encoded is not None:
            self.checkpointer.output_json(graph.key(node_id), new_state.output, encoded)
        graph.outputs[node_id] = result.output
        data: dict[str, Any] = {
            "output": result.output,
            "cached": result.cached,
            "latency_ms": new_state.latency_ms,
        }
        if usage is not None:
            data["usage"] = new_state.meta["usage"]
        if result.branch is not None:
            data["branch"] = result.branch
        if resumed:
            data["resumed"] = True
        self.emit("node_completed", graph.key(node_id), **data)
        if self.redrives and not resumed:
            # Progress: a takeover after a slow heartbeat or a one-off crash is forgiven.
            self.redrives = 0
            self.checkpointer.run_fields(redrives=0)
        if not resumed:
            self._settle(node_id, graph)

    def _park(
        self, node_id: str, state: NodeState, result: NodeResult, meta: dict[str, Any]
    ) -> None:
        """The node waits (a long delay, a wait node) with `result`'s output until its
        `park_until`."""
        self.set_state(
            node_id,
            state.model_copy(
                update={
                    "status": NodeStatus.WAITING,
                    "output": result.output,
                    "wake_at": result.park_until,
                    "meta": meta,
                }
            ),
        )

    def _park_for_resume(self, node_id: str, state: NodeState, result: NodeResult) -> None:
        """Park a node until it is resumed (`Store.resume_node` looks for `meta.resumable`)
        or its `park_until` passes; the `node_waiting` event carries its link."""
        meta = {**result.meta, "resumable": True}
        self._park(node_id, state, result, meta)
        until = result.park_until.isoformat() if result.park_until else "the run's deadline"
        self.emit("log", node_id, level="info", message=f"waiting to be resumed, until {until}")
        self.emit(
            "node_waiting",
            node_id,
            resumable=True,
            resume_url=meta.get("resume_url"),
            timeout_at=meta.get("timeout_at"),
        )

    def _fail(
        self,
        node_id: str,
        attempt: int,
        message: str,
        latency_ms: float,
        *,
        settle: bool = True,
        scope: GraphScope | None = None,
    ) -> None:
        """Record a node's failure; `settle=False` while the ready set is being rebuilt."""
        graph = self if scope is None else scope
        on_error = graph.plan.nodes[node_id].spec.on_error
        state = graph.states[node_id].model_copy(
            update={
                "status": NodeStatus.FAILED,
                "error": message,
                "attempts": attempt,
                "latency_ms": round(latency_ms, 3),
                "finished_at": utcnow(),
            }
        )
        self._set(graph, node_id, state)
        self.budget.release(graph.key(node_id))
        self.emit(
            "node_failed", graph.key(node_id), error=message, attempt=attempt, on_error=on_error
        )
        if on_error == "fail":
            graph.failed_node = node_id
        else:
            graph.outputs[node_id] = None
            if settle:
                self._settle(node_id, graph)

    # The run ----------------------------------------------------------------------------
    async def drive(self) -> RunStatus | None:
        """Advance the run; None when it stopped without finishing (lease lost, store down)."""
        try:
            return await self._drive()
        except LeaseLost:
            self._lose_lease()
            log.warning(
                "lost the lease on run %s; another worker continues it", self.run.execution_id
            )
            await self._stop_tasks()
            return None
        except CheckpointUnavailable as exc:
            self.store_failure = exc
            log.warning("run %s stops until the store is back: %s", self.run.execution_id, exc)
            await self._stop_tasks()
            return None
        except Exception:
            await self._stop_tasks()
            raise

    async def _drive(self) -> RunStatus | None:
        run = self.run
        if run.cancel_requested:
            self._cancel_unfinished_nodes()
            return await self._finish(RunStatus.CANCELLED, error="cancelled")
        now = utcnow()
        if run.status is RunStatus.QUEUED:
            self.run_info["started_at"] = now.isoformat()
            self.checkpointer.run_fields(status=RunStatus.RUNNING, start_time=now)
            self.emit("run_started", None, workflow_id=run.workflow_id, trigger=run.trigger)
        elif run.status in (RunStatus.WAITING, RunStatus.RUNNING):
            self.checkpointer.run_fields(status=RunStatus.RUNNING, wake_at=None)
        # Wall clock from the start, parked time included (a retry starts the clock again).
        started = now if run.status is RunStatus.QUEUED else (run.start_time or now)
        max_seconds = self.executor.settings.max_run_seconds
        self.deadline = started + timedelta(seconds=max_seconds)
        overtime = (
            f"the run took longer than {number(max_seconds)} s since it started at "
            f"{started.isoformat()}, waiting included (the limit set by DUCTWORK_MAX_RUN_SECONDS)"
        )
        if now >= self.deadline:
            self._stop_for_limit(overtime)
            return await self._fail_for_limit()
        self._prepare()
        loop = asyncio.get_running_loop()
        deadline_timer = loop.call_later(
            (self.deadline - now).total_seconds(), self._stop_for_limit, overtime
        )
        # The first renewal is due a heartbeat after the lease was set: most runs end
        # before it, so the heartbeat's task is started then, not with every run.
        leased_at = loop.time() if self.leased_at is None else self.leased_at
        heartbeat_timer = loop.call_later(
            max(0.0, leased_at + self.executor.settings.heartbeat_seconds - loop.time()),
            self._start_heartbeat,
            leased_at,
        )
        cancelled = self.cancel_event
        cancelled.on_set = self._wake_drive
        finished = self.finished_tasks
        try:
            while True:
                self._schedule()
                if not self.tasks or self.failed_node is not None:
                    break
                if self.checkpointer.settles_a_node():
                    await self.checkpointer.flush()
                else:
                    # The run's start and the first `running` states go with the first
                    # completion (one commit fewer per run); a node with side effects
                    # commits them itself before it starts.
                    self.checkpointer.flush_later()
                # Woken by the done callbacks (`_task_done`), not `asyncio.wait`: that added
                # and removed a callback on every running node at every wake-up.
                if not finished and not cancelled.is_set():
                    self._wakeup = loop.create_future()
                    try:
                        await self._wakeup
                    finally:
                        self._wakeup = None
                if cancelled.is_set():
                    break
                while finished:
                    task = finished.popleft()
                    if self.tasks.pop(task, None) is not None:
                        task.result()  # node errors are handled inside; anything else is a bug
            return await self._conclude()
        finally:
            deadline_timer.cancel()
            heartbeat_timer.cancel()
            if self._heartbeat_task is not None:
                self._heartbeat_task.cancel()
            cancelled.on_set = None
            for task in self.tasks:
                task.cancel()
            self.checkpointer.close()

    async def _conclude(self) -> RunStatus | None:
        if self.store_failure is not None:
            raise self.store_failure
        if self.lease_lost:
            log.warning(
                "lost the lease on run %s; another worker continues it", self.run.execution_id
            )
            await self._stop_tasks()
            return None
        if self.limit_failure is not None:
            return await self._fail_for_limit()
        if self.cancel_event.is_set():
            await self._stop_tasks(cancelled=True)
            # Parked nodes too: a finished run waits for nothing (its resume links are
            # refused), and a retry runs them again.
            self._cancel_unfinished_nodes()
            return await self._finish(RunStatus.CANCELLED, error="cancelled")
        if self.failed_node is not None:
            await self._stop_tasks(cancelled=True)
            self._cancel_unfinished_nodes()
            error = self.states[self.failed_node].error
            return await self._finish(
                RunStatus.ERROR, error=f"node {self.failed_node} failed: {error}"
            )
        waiting = [s for s in self.states.values() if s.status is NodeStatus.WAITING]
        if waiting:
            # Woken at the deadline to be failed, not when a longer delay ends; a node
            # waiting to be resumed without a timeout waits until then.
            deadline = self.deadline or utcnow() + timedelta(
                seconds=self.executor.settings.max_run_seconds
            )
            wake_at = min([deadline, *(s.wake_at for s in waiting if s.wake_at is not None)])
            self.checkpointer.run_fields(status=RunStatus.WAITING, wake_at=wake_at)
            self.emit("run_waiting", None, wake_at=wake_at.isoformat())
            await self.checkpointer.flush()
            return RunStatus.WAITING
        return await self._finish(RunStatus.SUCCESS)

    async def _fail_for_limit(self) -> RunStatus:
        """Fail the run for `limit_failure`: running and parked nodes end as cancelled
        (so a retry runs them again), then the run ends with the error."""
        await self._stop_tasks(cancelled=True)
        self._cancel_unfinished_nodes()
        return await self._finish(RunStatus.ERROR, error=self.limit_failure)

    def waits_for_resume(self) -> bool:
        """Whether a node of the run is parked until someone resumes it."""
        return any(
            state.status is NodeStatus.WAITING and state.meta.get("resumable")
            for state in self.states.values()
        )

    def _cancel_unfinished_nodes(self) -> None:
        """Running and parked nodes end as cancelled, so a retry resets and runs them."""
        for node_id, state in self.states.items():
            if state.status in (NodeStatus.RUNNING, NodeStatus.WAITING):
                self.set_state(
                    node_id,
                    state.model_copy(
                        update={"status": NodeStatus.CANCELLED, "finished_at": utcnow()}
                    ),
                )
                self.emit("node_cancelled", node_id)

    async def _stop_tasks(
        self, *, cancelled: bool = False, scope: GraphScope | None = None
    ) -> None:
        """Cancel the running nodes of `scope` (default: the run's graph); with
        `cancelled`, record them so."""
        graph = self if scope is None else scope
        tasks = list(graph.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for task in tasks:
            # A node stopped mid-call never settles: its budget estimates end here, or they
            # would hold money for the rest of the run (a loop item cancelled by another's
            # failure, with `on_error: continue` on the loop).
            self.budget.release(graph.key(graph.tasks[task]))
        if cancelled:
            for task in tasks:
                node_id = graph.tasks[task]
                state = graph.states[node_id]
                self._set(
                    graph,
                    node_id,
                    state.model_copy(
                        update={"status": NodeStatus.CANCELLED, "finished_at": utcnow()}
                    ),
                )
                self.emit("node_cancelled", graph.key(node_id))
        graph.tasks.clear()

    def _result(self) -> Any:
        ends = [
            node_id
            for node_id, node in self.plan.nodes.items()
            if node.spec.type == "end" and self.states[node_id].status is NodeStatus.COMPLETED
        ]
        if len(ends) == 1:
            return self.outputs[ends[0]]
        if ends:
            return {node_id: self.outputs[node_id] for node_id in ends}
        return None

    async def _finish(self, status: RunStatus, *, error: str | None = None) -> RunStatus:
        now = utcnow()
        if error is not None:
            error = self.mask(error)
        fields: dict[str, Any] = {
            "status": status,
            "end_time": now,
            "error": error,
            "wake_at": None,
        }
        if status is RunStatus.SUCCESS:
            fields["result"] = self._result()
        elif status is RunStatus.ERROR:
            fields = failed_run_fields(self.run, **fields)
        # The terminal commit gives the lease up too (fenced like any checkpoint, so
        # only while it is ours): one write fewer than `release_lease` after it.
        self.checkpointer.run_fields(**fields, lease_owner=None, lease_expires_at=None)
        data: dict[str, Any] = {"status": status.value}
        if error:
            data["error"] = error
        if self.budget.reported:
            data["usage"] = self.budget.usage.dump()
        self.emit("run_finished", None, **data)
        await self.checkpointer.flush()
        self.lease_released = True
        return status

    def _start_heartbeat(self, renewed_at: float) -> None:
        self._heartbeat_task = asyncio.get_running_loop().create_task(self._heartbeat(renewed_at))

    async def _heartbeat(self, renewed_at: float) -> None:
        """Renew the lease and look for a cancel request, every heartbeat (the first is due
        when this starts: `_drive` starts it a heartbeat after the lease was taken, at
        loop time `renewed_at`).

        If the store cannot be reached for as long as a lease lasts, another worker
        may take the run over: this one then stops without writing anything more.
        """
        settings = self.executor.settings
        store = self.executor.store
        execution_id = self.run.execution_id
        clock = asyncio.get_running_loop().time
        delay = 0.0
        while True:
            await asyncio.sleep(delay)
            delay = settings.heartbeat_seconds
            sent_at = clock()
            expires = utcnow() + timedelta(seconds=settings.lease_seconds)
            try:
                kept = await store.renew_lease(execution_id, self.executor.owner, expires)
                cancel = kept and await store.is_cancel_requested(execution_id)
            except Exception as exc:
                if clock() - renewed_at < settings.lease_seconds:
                    log.warning("renewing the lease of run %s failed: %s", execution_id, exc)
                    continue
                kept, cancel = False, False
            if not kept:
                self.lease_lost = True
                self.cancel_event.set()
                return
            renewed_at = sent_at
            if cancel:
                self.cancel_event.set()


EXPECTED_RUNS = 4096
"""At most this many runs handed over by `Executor.expect` wait for their `advance`."""


class Executor:
    """Advances runs; one per process, shared by the API's in-process queue and workers."""

    def __init__(
        self,
        *,
        store: Store,
        bus: EventBus,
        services: NodeServices,
        registry: Mapping[str, NodeType[Any]],
        settings: Settings,
        owner: str | None = None,
        on_commit: Callable[[Sequence[Event]], None] | None = None,
        credentials: CredentialSource | None = None,
        admission: AdmissionControl | None = None,
    ) -> None:
        """`on_commit` sees every batch of events once it is committed (metrics, audit).

        `credentials`: where runs load the credentials their workflow names (`secrets.X`,
        a node's `credential`); without it templates read DUCTWORK_SECRETS only.
        `admission`: applies concurrency limits before a queued run starts (None: the
        limits are not applied).
        """
        install_log_filter()
        self.admission = admission
        self.credentials = credentials
        self.on_commit = on_commit
        self.store = store
        self.bus = bus
        self.services = services
        self.settings = settings
        self.owner = owner or default_owner(settings.worker_id)
        self.committer = GroupCommitter(store, self.owner)
        self.plans = PlanCache(registry)
        self._active: dict[str, _RunDriver] = {}
        self._claimed: set[str] = set()
        self._released: set[str] = set()
        """Runs whose terminal commit gave their lease up (`advance` releases the others)."""
        self._expected: dict[str, Run] = {}
        """Runs this process created and enqueued to itself (`expect`), by id."""
        self._parked_for_resume: set[str] = set()
        """Runs that just parked with a node waiting to be resumed (see `advance`)."""

    @property
    def active_runs(self) -> list[str]:
        """Ids of runs this process is advancing now."""
        return list(self._active)

    def cancel_local(self, execution_id: str) -> bool:
        """Stop a run this process is advancing (True if it was here).

        A run handed over by `expect` and not advanced yet is forgotten there, so its
        `advance` reads the run (and the cancel flag) from the store instead of
        driving what it was handed.
        """
        driver = self._active.get(execution_id)
        if driver is None:
            self._expected.pop(execution_id, None)
            return False
        driver.cancel_event.set()
        return True

    def lease_new_run(self, run: Run) -> Run:
        """`run`, about to be inserted by this process for its own queue (`expect`),
        leased to this executor from the start: the lease rides along with the
        run's INSERT and `advance` needs no lease statement of its own.

        Unchanged (`advance` takes the lease as for any run) when the start is
        conditional: a concurrency limit applies (engine/admission.py decides after
        the lease is taken), or the run is not a fresh queued one. Should this
        process die before driving it, the sweep offers the run once the lease
        expires (`Store.find_runs_to_resume`), and whoever takes it counts a re-drive.
        """
        if (
            run.status is not RunStatus.QUEUED
            or run.lease_owner is not None
            or run.cancel_requested
            or run.node_states
            or run_limits(run, self.settings) != (None, None)
        ):
            return run
        expires = utcnow() + timedelta(seconds=self.settings.lease_seconds)
        return run.model_copy(update={"lease_owner": self.owner, "lease_expires_at": expires})

    def expect(self, run: Run) -> None:
        """Hand over a run this process just created and enqueued to its own queue.

        Created leased to this executor (`lease_new_run`) and advanced soon enough,
        it is driven as handed over, with no lease statement. Otherwise `advance`
        passes it to `Store.acquire_lease` as `known`, which need not read back what
        was just written. Only a hint: the lease is still the store's (fencing
        unchanged), the run is still read whole when it moved on meanwhile, and a
        run delivered elsewhere or again is read as usual.
        """
        if len(self._expected) >= EXPECTED_RUNS:
            # Never taken (a queue that dropped it): the oldest goes; it is only a hint.
            self._expected.pop(next(iter(self._expected)))
        self._expected[run.execution_id] = run

    async def give_back_unstarted(self, execution_id: str) -> None:
        """Give back the lease a run was inserted with (`lease_new_run`) while its
        advance has not begun (it waits behind others in this process's queue), so a
        cancel finds the run free and ends it at once instead of when a slot frees.

        The hint goes too: an advance that comes later takes the lease from the store
        like any other (and finds the run cancelled). An advance that comes during
        the release finds the run claimed and leaves it; the cancel that follows ends
        it, and the sweep offers it should that cancel fail.
        """
        known = self._expected.get(execution_id)
        if known is None or known.lease_owner != self.owner or execution_id in self._claimed:
            return
        del self._expected[execution_id]
        self._claimed.add(execution_id)
        try:
            # Should it fail, the cancel only sets the flag, which the advance reads.
            await self._release_quietly(execution_id)
        finally:
            self._claimed.discard(execution_id)

    async def release_unstarted(self) -> None:
        """Give back the leases runs were inserted with (`lease_new_run`) that this
        process will not advance now (it stops, its queue closed): the next process
        then takes them at once, with no re-drive counted, as runs nobody held.
        Best effort: a lease left behind expires on its own."""
        unstarted, self._expected = self._expected, {}
        for execution_id, run in unstarted.items():
            if run.lease_owner == self.owner:
                await self._release_quietly(execution_id)

    async def _release_quietly(self, execution_id: str) -> None:
        """Give the run's lease up; when the store is down, the lease lapses on its own."""
        try:
            await self.store.release_lease(execution_id, self.owner)
        except Exception as exc:
            log.warning("releasing the lease of run %s failed: %s", execution_id, exc)

    async def advance(self, execution_id: str) -> RunStatus | None:
        """Drive a run as far as it goes; None when another worker holds it or it is finished,
        `queued` when a concurrency limit keeps it from starting (engine/admission.py)."""
        known = self._expected.pop(execution_id, None)
        if execution_id in self._claimed:
            # Delivered twice to this process: the lease would say "ours" to both.
            return None
        self._claimed.add(execution_id)
        try:
            now = utcnow()
            leased_at = self._leased_at_creation(known, now)
            if known is not None and leased_at is not None:
                # Leased by its INSERT a moment ago: drive a copy of it (the creator
                # still holds `known`; the driver records loop items' states in its run).
                run: Run | None = known.model_copy(
                    update={"node_states": {}, "events": [], "variables": dict(known.variables)}
                )
            else:
                expires = now + timedelta(seconds=self.settings.lease_seconds)
                run = await self.store.acquire_lease(
                    execution_id, self.owner, expires, now, known=known
                )
            if run is None:
                return None
            try:
                if self.admission is None or await self.admission.admit(run, self.owner):
                    status = await self._drive(run, leased_at)
                else:
                    status = RunStatus.QUEUED  # refused a slot (engine/admission.py)
            finally:
                if execution_id in self._released:
                    self._released.discard(execution_id)  # its terminal commit did
                else:
                    await self._release_quietly(execution_id)
        finally:
            self._claimed.discard(execution_id)
        if self.admission is not None:
            if status is RunStatus.QUEUED:
                if await self.admission.recheck(execution_id):
                    return await self.advance(execution_id)
                return status
            await self.admission.after_advance(execution_id, status)
        if status is RunStatus.WAITING and await self._woken_while_parking(execution_id):
            return await self.advance(execution_id)
        return status

    def _leased_at_creation(self, known: Run | None, now: datetime) -> float | None:
        """The loop time `known` was leased to this executor by its INSERT
        (`lease_new_run`), when that was less than a heartbeat ago (the lease is as
        fresh as a renewed one, the heartbeat's schedule counts from then); None
        otherwise, and `advance` takes the lease from the store (ours already: no
        re-drive is counted; another worker's, once ours expired: None).
        """
        if known is None or known.lease_owner != self.owner or known.lease_expires_at is None:
            return None
        settings = self.settings
        age = settings.lease_seconds - (known.lease_expires_at - now).total_seconds()
        if not 0.0 <= age < settings.heartbeat_seconds:
            return None
        return asyncio.get_running_loop().time() - age

    async def _woken_while_parking(self, execution_id: str) -> bool:
        """Whether a run that just parked must be driven again at once (one read).

        A cancel, or a resume of one of its wait nodes, that came while it parked found
        the run still held here: the cancel found no driver to stop, the delivery that
        should drive the run found it claimed (or leased, on another worker) and was
        dropped, and the park commit overwrote the wake time a resume had set. Asked
        after the lease is given back, so a request landing later is delivered as usual.
        """
        if execution_id not in self._parked_for_resume:
            return await self.store.is_cancel_requested(execution_id)
        self._parked_for_resume.discard(execution_id)
        run = await self.store.get_run(execution_id, with_events=False)
        if run is None:
            return False
        return run.cancel_requested or any(
            state.status is NodeStatus.WAITING and state.meta.get("resumed")
            for state in run.node_states.values()
        )

    async def _drive(self, run: Run, leased_at: float | None = None) -> RunStatus | None:
        """Drive the leased run; `leased_at`: the loop time its lease was set, when
        not just now (`_RunDriver.leased_at`)."""
        if run.status.finished:
            return run.status
        limit = self.settings.max_run_redrives
        if run.redrives > limit:
            return await self._dead_letter(
                run.execution_id,
                f"the run was re-driven {run.redrives} times without a node completing "
                f"(DUCTWORK_MAX_RUN_REDRIVES is {limit}); giving up",
            )
        try:
            plan, needs = await self.plans.get_with_credentials(run)
        except WorkflowInvalid as exc:
            return await self._fail_invalid(run, exc)
        try:
            credentials = await self._load_credentials(needs.names)
        except CredentialUnusable as exc:
            # Not a store outage: driving it again would fail the same way forever.
            return await self._fail_run(run, f"the run's credentials cannot be used: {exc}")
        try:
            driver = _RunDriver(self, run, plan, needs, credentials, leased_at)
        except Exception as exc:
            # Left to escape, this would leave the run queued and offered again
            # every second, failing the same way each time: count it like a crash.
            return await self._crash_before_driving(run, credentials, exc)
        self._active[run.execution_id] = driver
        ACTIVE.add(driver.redactor.values)
        try:
            status = await driver.drive()
            if status is RunStatus.WAITING and driver.waits_for_resume():
                self._parked_for_resume.add(run.execution_id)
            return status
        except Exception as exc:
            return await self._after_crash(driver, exc)
        finally:
            self._active.pop(run.execution_id, None)
            if driver.lease_released:
                self._released.add(run.execution_id)
            try:
                await driver.checkpointer.drain()
            finally:
                ACTIVE.remove(driver.redactor.values)

    async def _load_credentials(self, names: frozenset[str]) -> dict[str, Credential]:
        """Only the credentials the plan names (one round trip), none when it names none.

        A store that cannot be reached raises, like any other store failure before
        the run starts: the run is left as it was and offered again later.
        """
        if not names or self.credentials is None:
            return {}
        return await self.credentials.load(names)

    async def _after_crash(self, driver: _RunDriver, exc: Exception) -> RunStatus | None:
        """Advancing the run raised: record it, never loop on it.

        What the run finished before the error is committed first, so a node
        that completed (an email sent, a webhook called) is not run again.
        A value the store cannot hold fails the run at once; any other error
        counts as a re-drive, and past DUCTWORK_MAX_RUN_REDRIVES the run fails.
        """
        execution_id = driver.run.execution_id
        log.error("advancing run %s failed", execution_id, exc_info=exc)
        checkpointer = driver.checkpointer
        if not isinstance(exc, UnstorableValue):
            try:
                await checkpointer.flush()
            except UnstorableValue as unstorable:
                exc = unstorable
            except Exception as flush_error:
                log.warning(
                    "run %s: could not commit its last changes (%s); it resumes from its "
                    "last checkpoint",
                    execution_id,
                    flush_error,
                )
                return None
        checkpointer.discard_pending()
        cause = driver.redactor.text(f"{type(exc).__name__}: {exc}")
        if isinstance(exc, UnstorableValue):
            return await self._dead_letter(execution_id, f"the store cannot hold it: {cause}")
        return await self._count_redrive(execution_id, driver.redrives + 1, cause)

    async def _crash_before_driving(
        self, run: Run, credentials: Mapping[str, Credential], exc: Exception
    ) -> RunStatus | None:
        """Preparing the run (building its driver) raised: a crash like any other.

        Nothing ran, so nothing is flushed; the error counts as a re-drive and,
        past DUCTWORK_MAX_RUN_REDRIVES, the run fails for good. The driver's
        redactor may be what failed, so the secrets are gathered here field by
        field, and masked in the log record and in the stored cause.
        """
        redactor = Redactor(_raw_secret_values(credentials, self.settings))
        ACTIVE.add(redactor.values)
        try:
            log.error("preparing run %s failed", run.execution_id, exc_info=exc)
            cause = redactor.text(f"{type(exc).__name__}: {exc}")
            return await self._count_redrive(run.execution_id, run.redrives + 1, cause)
        finally:
            ACTIVE.remove(redactor.values)

    async def _count_redrive(
        self, execution_id: str, redrives: int, cause: str
    ) -> RunStatus | None:
        """Record a failed attempt (`cause`, masked already) as re-drive `redrives`;
        past DUCTWORK_MAX_RUN_REDRIVES the run fails for good instead."""
        if redrives > self.settings.max_run_redrives:
            return await self._dead_letter(
                execution_id,
                f"advancing the run failed {redrives} times (DUCTWORK_MAX_RUN_REDRIVES is "
                f"{self.settings.max_run_redrives}); last error: {cause}",
            )
        stored = await self.store.get_run(execution_id, with_events=False)
        if stored is None:
            return None
        event = Event(
            seq=stored.last_seq + 1,
            type="log",
            timestamp=utcnow(),
            data={
                "level": "error",
                "message": clean_message(
                    f"advancing the run failed ({cause}); it will be tried again "
                    f"(re-drive {redrives} of {self.settings.max_run_redrives})"
                ),
            },
        )
        await self.store.checkpoint(
            execution_id,
            Checkpoint(events=[event], run_fields={"redrives": redrives}),
            owner=self.owner,
        )
        await self.bus.publish(execution_id, event)
        return None

    async def _dead_letter(self, execution_id: str, cause: str) -> RunStatus | None:
        """Fail a run for good with its cause: listed by the dead-letter view, never re-driven.

        Nodes the store still shows running or waiting fail with the cause
        instead of running again, so no side effect is repeated.
        """
        run = await self.store.get_run(execution_id, with_events=False)
        if run is None or run.status.finished:
            return run.status if run is not None else None
        cause = clean_message(cause)
        now = utcnow()
        node_states: dict[str, NodeState] = {}
        events: list[Event] = []
        seq = run.last_seq
        for node_id, state in run.node_states.items():
            if state.status in (NodeStatus.RUNNING, NodeStatus.WAITING):
                node_states[node_id] = state.model_copy(
                    update={
                        "status": NodeStatus.FAILED,
                        "error": f"not run again: {cause}",
                        "finished_at": now,
                    }
                )
                seq += 1
                events.append(
                    Event(
                        seq=seq,
                        type="node_failed",
                        node_id=node_id,
                        timestamp=now,
                        data={"error": f"not run again: {cause}", "attempt": state.attempts},
                    )
                )
        seq += 1
        events.append(
            Event(
                seq=seq,
                type="run_failed",
                timestamp=now,
                data={"error": cause, "redrives": run.redrives, "dead_letter": True},
            )
        )
        seq += 1
        events.append(
            Event(
                seq=seq,
                type="run_finished",
                timestamp=now,
                data={"status": RunStatus.ERROR.value, "error": cause},
            )
        )
        await self.store.checkpoint(
            execution_id,
            Checkpoint(
                node_states=node_states,
                events=events,
                run_fields=failed_run_fields(
                    run, end_time=now, error=cause, wake_at=None, dead_letter=True
                ),
            ),
            owner=self.owner,
        )
        if self.on_commit is not None:
            self.on_commit(events)
        await self.bus.publish_many(execution_id, events)
        log.error("run %s failed for good (dead letter): %s", execution_id, cause)
        return RunStatus.ERROR

    async def _fail_invalid(self, run: Run, exc: WorkflowInvalid) -> RunStatus:
        return await self._fail_run(run, str(exc))

    async def _fail_run(self, run: Run, error: str) -> RunStatus:
        """End a run that cannot start (invalid plan, unusable credentials) with `error`."""
        now = utcnow()
        event = Event(
            seq=run.last_seq + 1,
            type="run_finished",
            timestamp=now,
            data={"status": RunStatus.ERROR.value, "error": error},
        )
        await self.store.checkpoint(
            run.execution_id,
            Checkpoint(
                events=[event],
                run_fields=failed_run_fields(run, end_time=now, error=error),
            ),
            owner=self.owner,
        )
        await self.bus.publish(run.execution_id, event)
        return RunStatus.ERROR
