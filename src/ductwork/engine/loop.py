"""Runs a loop node's body once per item: bounded concurrency, results in item order,
per-item checkpoints.

Each item runs the body's plan (`Plan.bodies[loop id]`) in an `ItemScope`: its own
node states, outputs and ready set, keyed in the run as `node[index]` (`node[3][1]`
for item 1 of a loop nested in item 3). Body nodes go through the executor's one
node-running path (`_RunDriver._run_node`: retries, timeouts, masking, output
checks), only with the item's scope. When an item ends, its record `loop[index]` is
stored (completed with the item's result, or failed); an item whose record is
completed is never run again: not after a crash, not when the loop node is retried,
not when a failed run is retried. An item cut short by a crash resumes like a run
does: its completed body nodes keep their outputs, a node that was running runs again.

See docs/loop.md for the semantics and the reasoning.
"""

from __future__ import annotations

import asyncio
import time
from collections import ChainMap, deque
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ductwork.models import NodeState, NodeStatus, utcnow
from ductwork.nodes.base import ItemOutcome, NodeError

if TYPE_CHECKING:
    from ductwork.engine.executor import _RunDriver
    from ductwork.engine.graph import NodePlan, Plan


class GraphScope(Protocol):
    """A graph the executor schedules nodes in: the run's top level (the driver itself)
    or one item of a loop body (`ItemScope`)."""

    suffix: str
    """What the scope appends to a node id to key its state in the run (`[3]`)."""
    failed_node: str | None
    """The node whose failure (with on_error: fail) stops this graph."""
    fired_early: set[str]
    """Nodes queued before all their predecessors settled (`NodeType.fires_early`)."""

    @property
    def plan(self) -> Plan: ...
    @property
    def states(self) -> dict[str, NodeState]: ...
    @property
    def outputs(self) -> MutableMapping[str, Any]: ...
    @property
    def base_names(self) -> Mapping[str, Any]: ...
    @property
    def ready(self) -> deque[str]: ...
    @property
    def unsettled(self) -> dict[str, int]: ...
    @property
    def tasks(self) -> dict[asyncio.Task[None], str]: ...

    def key(self, node_id: str) -> str:
        """The node's key in the run's node states and events."""
        ...

    def entry_input(self) -> Any:
        """The `input` of a node without incoming edges."""
        ...


_RUN_AGAIN = frozenset({NodeStatus.FAILED, NodeStatus.CANCELLED, NodeStatus.SKIPPED})
"""Body node states an item that runs again resets (a `running` one runs again too,
with its attempt counted: see `ItemScope._prepare`)."""


class ItemScope:
    """One item of a loop body: the body's graph, with this item's states and outputs.

    Templates see what the loop node sees, plus `item`, `index` and `loop` ({item,
    index, count}); `outputs.<body node>` is this item's output of that node (the
    outer graph's outputs stay visible underneath). An entry node's `input` is the item.
    """

    def __init__(
        self,
        driver: _RunDriver,
        parent: GraphScope,
        plan: Plan,
        index: int,
        item: Any,
        count: int,
    ) -> None:
        self.driver = driver
        self.plan = plan
        self.index = index
        self.item = item
        self.suffix = f"{parent.suffix}[{index}]"
        stored = driver.run.node_states
        suffix = self.suffix
        self.states: dict[str, NodeState] = {}
        own: dict[str, Any] = {}
        for node_id in plan.order:
            state = stored.get(node_id + suffix)
            if state is None or state.status in _RUN_AGAIN:
                # An item runs again only when it did not complete (a crash, a retry of
                # the loop or of the run): what did not complete in it runs again too,
                # as a retried run's nodes do.
                state = NodeState()
            elif state.status is NodeStatus.COMPLETED:
                own[node_id] = state.output
            self.states[node_id] = state
        self._own = own
        self.outputs: MutableMapping[str, Any] = ChainMap(own, parent.outputs)
        self.base_names: Mapping[str, Any] = {
            **parent.base_names,
            "outputs": self.outputs,
            "item": item,
            "index": index,
            "loop": {"item": item, "index": index, "count": count},
        }
        self.ready: deque[str] = deque()
        self.unsettled: dict[str, int] = {}
        self.tasks: dict[asyncio.Task[None], str] = {}
        self.failed_node: str | None = None
        self.fired_early: set[str] = set()

    def key(self, node_id: str) -> str:
        return node_id + self.suffix

    def entry_input(self) -> Any:
        return self.item

    def _prepare(self) -> None:
        """The ready set from the item's stored states (all pending on a first run)."""
        driver = self.driver
        for node_id, state in self.states.items():
            if state.status is NodeStatus.RUNNING:
                # Its worker died mid-flight: run it again, as the run's own nodes are.
                driver.emit(
                    "log",
                    self.key(node_id),
                    level="warning",
                    message=f"node was running (attempt {state.attempts}) when its worker "
                    "stopped; running it again",
                )
                driver._set(self, node_id, state.model_copy(update={"status": NodeStatus.PENDING}))
        states = self.states
        for node_id, node in self.plan.nodes.items():
            self.unsettled[node_id] = sum(
                1 for pred in node.predecessors if not states[pred].status.settled
            )
        for node_id in self.plan.order:
            if states[node_id].status is not NodeStatus.PENDING:
                continue
            if self.unsettled[node_id] == 0:
                self.ready.append(node_id)
            elif driver._fires_early(node_id, self):
                self.fired_early.add(node_id)
                self.ready.append(node_id)

    async def run(self) -> ItemOutcome:
        """Run the item's body to its end; its outcome (the sinks' output, or the failure)."""
        driver = self.driver
        self._prepare()
        try:
            while True:
                driver._schedule(self)
                if not self.tasks or self.failed_node is not None:
                    break
                # As for the run's graph: what completed is committed before what depends on it.
                await driver.checkpointer.flush()
                done, _ = await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    self.tasks.pop(task)
                    task.result()  # node errors are handled inside; anything else is a bug
        except asyncio.CancelledError:
            await driver._stop_tasks(cancelled=True, scope=self)
            raise
        failed = self.failed_node
        if failed is not None:
            await driver._stop_tasks(cancelled=True, scope=self)
            return ItemOutcome(
                self.index, False, node_id=failed, error=self.states[failed].error or "failed"
            )
        sinks = self.plan.sinks
        if len(sinks) == 1:
            return ItemOutcome(self.index, True, result=self._own.get(sinks[0]))
        return ItemOutcome(self.index, True, result={sink: self._own.get(sink) for sink in sinks})


async def run_items(
    driver: _RunDriver,
    scope: GraphScope,
    node: NodePlan,
    items: Sequence[Any],
    *,
    concurrency: int,
    stop_on_error: bool,
) -> list[ItemOutcome]:
    """Run `node`'s body for each of `items`, `concurrency` at a time (NodeContext.run_items).

    Items whose record (`loop[index]`) is completed already are not run: their stored
    result is used. Items start in order; results are returned in item order. With
    `stop_on_error` the first failed item cancels the items in flight (their body
    nodes end cancelled and they get no record, so a retry runs them) and only the
    outcomes settled so far are returned.
    """
    body = scope.plan.bodies[node.id]
    loop_key = scope.key(node.id)
    stored = driver.run.node_states
    count = len(items)
    outcomes: list[ItemOutcome | None] = [None] * count
    todo: deque[int] = deque()
    for index in range(count):
        done = stored.get(f"{loop_key}[{index}]")
        if done is not None and done.status is NodeStatus.COMPLETED:
            outcomes[index] = ItemOutcome(index, True, result=done.output)
        else:
            todo.append(index)
    workers: list[asyncio.Task[None]] = []
    stopped = False

    def record(outcome: ItemOutcome, started_at: Any, started: float) -> ItemOutcome:
        """Store the item's record; the outcome as recorded (failed when its result
        would take the run's stored outputs past DUCTWORK_MAX_RUN_OUTPUT_BYTES)."""
        key = f"{loop_key}[{outcome.index}]"
        latency = round((time.perf_counter() - started) * 1000, 3)
        if outcome.ok:
            # The record stores the result once more: it counts towards the run's cap
            # like any output (checked and counted with no await in between).
            try:
                _, size = driver._check_output(outcome.result)
            except NodeError as exc:
                outcome = ItemOutcome(
                    outcome.index,
                    False,
                    node_id=node.id,
                    error=f"its result cannot be stored: {exc}",
                )
            else:
                driver.stored_output_bytes += size
        if outcome.ok:
            state = NodeState(
                status=NodeStatus.COMPLETED,
                output=outcome.result,
                attempts=1,
                latency_ms=latency,
                started_at=started_at,
                finished_at=utcnow(),
            )
            driver.set_scoped_state(key, state)
            driver.emit(
                "node_completed", key, output=outcome.result, cached=False, latency_ms=latency
            )
        else:
            error = f"node {outcome.node_id} failed: {outcome.error}"
            state = NodeState(
                status=NodeStatus.FAILED,
                error=error,
                attempts=1,
                latency_ms=latency,
                started_at=started_at,
                finished_at=utcnow(),
            )
            driver.set_scoped_state(key, state)
            driver.emit("node_failed", key, error=error, attempt=1)
        driver.checkpointer.flush_later()
        return outcome

    async def worker() -> None:
        nonlocal stopped
        while todo and not stopped:
            index = todo.popleft()
            item = ItemScope(driver, scope, body, index, items[index], count)
            started_at, started = utcnow(), time.perf_counter()
            outcome = record(await item.run(), started_at, started)
            outcomes[index] = outcome
            if not outcome.ok and stop_on_error:
                stopped = True
                me = asyncio.current_task()
                for other in workers:
                    if other is not me:
                        other.cancel()

    loop = asyncio.get_running_loop()
    workers.extend(loop.create_task(worker()) for _ in range(min(concurrency, len(todo))))
    try:
        if workers:
            await asyncio.wait(workers)
        for task in workers:
            if not task.cancelled():
                task.result()  # a bug in a worker surfaces as the loop node's error
    finally:
        # The loop node was cancelled (run cancelled, node timeout): stop every item.
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return [outcome for outcome in outcomes if outcome is not None]


def rerun_on_retry(
    key: str, parents: Mapping[str, str | None], states: Mapping[str, NodeState]
) -> bool:
    """Whether a retry of a failed run resets the (unfinished) state stored as `key`.

    A node of the definition, or a top-level loop's item record: yes. A state inside
    a loop item (`b[3]`, a nested loop's `inner[3]` or its record `inner[3][1]`): only
    when that item's record (`loop[3]`) is not completed, so a completed item keeps
    its nodes' states as they ended. A key of a node the definition no longer has: no.
    """
    node_id, bracket, rest = key.partition("[")
    if node_id not in parents:
        return False
    if not bracket:
        return True
    indices = rest[:-1].split("][")
    enclosing: list[str] = []
    parent = parents[node_id]
    while parent is not None and len(enclosing) < len(parents):
        enclosing.append(parent)
        parent = parents.get(parent)
    depth = len(enclosing)  # the node sits inside this many loop items
    if depth == 0:
        return True
    item = enclosing[0] + "".join(f"[{index}]" for index in indices[:depth])
    record = states.get(item)
    return record is None or record.status is not NodeStatus.COMPLETED
