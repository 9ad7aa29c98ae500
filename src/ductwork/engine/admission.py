"""Concurrency limits: a queued run starts only when a slot is free (issue 11).

A workflow's `settings.max_concurrent_runs` bounds how many of its runs are
running or waiting at once; DUCTWORK_MAX_ACTIVE_RUNS bounds all runs together.
A run holds a slot from its admission until it finishes (`admitted` set, status
not finished), so a parked run keeps its slot while it sleeps and a run whose
worker crashed keeps it while another worker resumes it; finishing frees it by
status alone, so no path that ends a run has to give a slot back.

`Executor.advance` asks `AdmissionControl.admit` before it drives a queued run.
The decision is one atomic store operation (`Store.admit_run`), so any number of
workers never admit more runs than a limit allows. A refused run stays `queued`
with a `queued_reason` (and one `log` event each time the reason changes). It is
offered again:

- when a run of its workflow finishes (`after_advance`: the oldest waiting run
  of the workflow; with a global limit, the oldest waiting run of each workflow);
- when an older run of its workflow is admitted and slots are left (FIFO: a run
  refused because an older one was in line gets its turn right after it);
- by the sweep (`sweep_offers`), which offers the head of every workflow's line,
  the safety net after a crash.

A run without any limit costs two attribute reads and a dict lookup: no store call.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from ductwork.engine.limits import number
from ductwork.events.base import EventBus
from ductwork.models import Checkpoint, Event, Run, RunStatus, utcnow
from ductwork.settings import Settings
from ductwork.store.base import Admission, LeaseLost, Store

log = logging.getLogger("ductwork.admission")

Offer = Callable[[Sequence[str]], Awaitable[None]]
"""Enqueues runs to be advanced (the service's queue); runs queued already are skipped."""

GLOBAL_OFFERS = 5
"""Runs offered when a slot under the global limit frees: the heads of this many
workflows' lines (the first may be held back by its own workflow's limit)."""

SWEEP_OFFERS = 100
"""Heads of lines the sweep offers at most, each time it runs."""

Limits = tuple[str, int | None, int | None]
"""(workflow id, workflow limit, global limit) of a run being advanced."""


def run_limits(run: Run, settings: Settings) -> tuple[int | None, int | None]:
    """The workflow limit (from the definition the run started with) and the global one.

    A sync sub-workflow child run has neither: it runs within the slot its parent
    holds (the parent waits for it), so a limit its parent fills cannot deadlock the
    two. An async child (trigger `mode` "async") is admitted like any run: nobody
    waits for it, and a loop of async calls must not start past the limit. A child
    whose trigger has no `mode` (started before it was recorded) counts as sync.
    """
    if run.parent_execution_id is not None and not _async_child(run):
        return None, None
    return run.definition.settings.max_concurrent_runs, settings.max_active_runs


def _async_child(run: Run) -> bool:
    return run.trigger is not None and run.trigger.get("mode") == "async"


def describe(admission: Admission, workflow_limit: int | None, global_limit: int | None) -> str:
    """The `queued_reason` of a refused run: which limit, and how many runs hold slots."""
    if admission.blocked_by == "global" and global_limit is not None:
        runs = "run" if global_limit == 1 else "runs"
        return (
            f"waiting for a slot: DUCTWORK_MAX_ACTIVE_RUNS allows {number(global_limit)} "
            f"{runs} of all workflows at once ({admission.global_active} active)"
        )
    if admission.blocked_by == "order":
        return "waiting for a slot: older runs of this workflow are queued first" + (
            f" (the workflow allows {_runs(workflow_limit)} at once)"
            if workflow_limit is not None
            else ""
        )
    limit = workflow_limit if workflow_limit is not None else 0
    return (
        f"waiting for a slot: the workflow allows {_runs(limit)} at once "
        f"({admission.workflow_active} active)"
    )


def _runs(count: int) -> str:
    return f"{number(count)} concurrent run{'' if count == 1 else 's'}"


class AdmissionControl:
    """Applies the concurrency limits for one process (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        settings: Settings,
        offer: Offer | None = None,
    ) -> None:
        """`offer` enqueues runs that may now get a slot; None: only the sweep offers them."""
        self.store = store
        self.bus = bus
        self.settings = settings
        self.offer = offer
        self._limited: dict[str, Limits] = {}
        """Runs with a limit this process is advancing now (read by `after_advance`)."""

    async def admit(self, run: Run, owner: str) -> bool:
        """Whether the run (leased by `owner`) may be driven now.

        Runs without limits, runs admitted before (a parked run, a run resumed
        after a crash), runs that are not queued and runs asked to cancel (the
        driver ends them) pass without a store call. A refused run gets its
        `queued_reason`, and a `log` event when the reason is new.
        """
        workflow_limit, global_limit = run_limits(run, self.settings)
        if workflow_limit is None and global_limit is None:
            return True
        self._limited[run.execution_id] = (run.workflow_id, workflow_limit, global_limit)
        if run.status is not RunStatus.QUEUED or run.admitted or run.cancel_requested:
            return True
        admission = await self.store.admit_run(run.execution_id, workflow_limit, global_limit)
        if admission.admitted:
            await self._offer_next(run, admission, workflow_limit, global_limit)
            return True
        if admission.blocked_by is None:
            # Not queued any more (another worker started or ended it meanwhile).
            return False
        reason = describe(admission, workflow_limit, global_limit)
        if reason != run.queued_reason:
            event = Event(
                seq=run.last_seq + 1,
                type="log",
                timestamp=utcnow(),
                data={"level": "info", "message": reason},
            )
            try:
                await self.store.checkpoint(
                    run.execution_id,
                    Checkpoint(events=[event], run_fields={"queued_reason": reason}),
                    owner=owner,
                )
            except LeaseLost:
                return False
            await self.bus.publish(run.execution_id, event)
        return False

    async def recheck(self, execution_id: str) -> bool:
        """After a refusal, with the lease given back: whether a slot freed meanwhile.

        A run that finished while this process held the refused run offered it,
        and that offer found it held and was dropped; asking once more after the
        lease is released closes that window. True: the run is admitted now and
        must be advanced again.
        """
        limits = self._limited.pop(execution_id, None)
        if limits is None:
            return False
        _, workflow_limit, global_limit = limits
        try:
            admission = await self.store.admit_run(execution_id, workflow_limit, global_limit)
        except Exception as exc:  # the sweep offers it again
            log.warning("checking run %s for a slot again failed: %s", execution_id, exc)
            return False
        return admission.admitted

    async def after_advance(self, execution_id: str, status: RunStatus | None) -> None:
        """Forget the run; when it finished, offer the runs its slot may go to."""
        limits = self._limited.pop(execution_id, None)
        if limits is None or status is None or not status.finished or self.offer is None:
            return
        workflow_id, workflow_limit, global_limit = limits
        offers: list[str] = []
        try:
            if workflow_limit is not None:
                offers.extend(await self.store.find_waiting_runs(workflow_id, 1))
            if global_limit is not None:
                heads = await self.store.find_waiting_heads(utcnow(), GLOBAL_OFFERS)
                offers.extend(eid for eid in heads if eid not in offers)
        except Exception as exc:  # the sweep offers them later
            log.warning("finding runs waiting for the slot of %s failed: %s", execution_id, exc)
        if offers:
            await self._offer(offers)

    async def after_cancel(self, run: Run) -> None:
        """A queued run was cancelled at once (nobody held it): if it held a slot, or
        was first in its workflow's line, the runs behind it may go now."""
        workflow_limit, global_limit = run_limits(run, self.settings)
        if workflow_limit is None and global_limit is None:
            return
        self._limited[run.execution_id] = (run.workflow_id, workflow_limit, global_limit)
        await self.after_advance(run.execution_id, RunStatus.CANCELLED)

    async def sweep_offers(self) -> list[str]:
        """The runs the sweep offers: the head of every workflow's line of refused runs."""
        return await self.store.find_waiting_heads(utcnow(), SWEEP_OFFERS)

    async def _offer_next(
        self,
        run: Run,
        admission: Admission,
        workflow_limit: int | None,
        global_limit: int | None,
    ) -> None:
        """Slots are left after this admission: runs that waited behind this one
        (refused for FIFO order) may go now."""
        if self.offer is None:
            return
        room = [
            limit - active
            for limit, active in (
                (workflow_limit, admission.workflow_active),
                (global_limit, admission.global_active),
            )
            if limit is not None
        ]
        free = min(room)
        if free <= 0:
            return
        try:
            waiting = await self.store.find_waiting_runs(run.workflow_id, min(free, GLOBAL_OFFERS))
        except Exception as exc:  # the sweep offers them later
            log.warning("finding runs waiting behind %s failed: %s", run.execution_id, exc)
            return
        if waiting:
            await self._offer(waiting)

    async def _offer(self, execution_ids: Sequence[str]) -> None:
        if self.offer is None:
            return
        try:
            await self.offer(execution_ids)
        except Exception as exc:  # the sweep offers them later
            log.warning("offering runs %s a slot failed: %s", list(execution_ids), exc)
