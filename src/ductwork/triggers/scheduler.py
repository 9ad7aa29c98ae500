"""The background firer of schedules, one per sweeping process (embedded, worker).

Exactly once per slot comes from the store, not from timers: every process that
runs a Scheduler fires every due slot, and the run it creates carries the slot's
key (`schedule.slot_key`) as its idempotency key, so the second process to create
it gets `DuplicateRun` and moves on (`Ductwork.fire_schedule`). Any number of
processes may run one; each adds one refused insert per slot.

Each process keeps, per schedule, a cursor: the last slot it handled. At first
sight of a schedule that is the last slot any process fired
(`Store.latest_idempotency_key`), so slots missed while nothing ran are caught up
per the schedule's `catch_up`; a schedule never fired starts now (no retroactive
runs). A workflow's current version bounds the catch-up too: slots before it was
last saved are not fired, so a workflow paused and resumed while no scheduler ran
does not fire the slots of its pause when one starts; a scheduler that sees a
workflow paused or resumed moves its cursors to now, so nothing of the pause is caught
up either.

The scheduler sleeps until the earliest due slot of all schedules (not a polling
tick: the delay between a slot and its run is the sleep's overshoot), re-reads
every schedule each `schedule_refresh_seconds`, and a workflow's schedules as soon
as a `triggers_changed` control message names it (`changed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from ductwork.models import Workflow, utcnow
from ductwork.settings import Settings
from ductwork.store.base import Store
from ductwork.triggers.schedule import (
    FUTURE_SLOT_GRACE,
    due_slots,
    key_prefix,
    next_fire_times,
    next_slot,
    slot_of_key,
)
from ductwork.triggers.spec import ScheduleTrigger, is_paused, parse_triggers

log = logging.getLogger("ductwork.scheduler")

Fire = Callable[[Workflow, ScheduleTrigger, datetime], Awaitable[object]]
"""Starts the run of one slot (`Ductwork.fire_schedule`); a duplicate is not an error."""

FIRE_CONCURRENCY: Final = 16
"""Schedules fired at once when many are due together (each fires its slots in order)."""

MAX_RETRY_SECONDS: Final = 60.0
"""Longest pause before trying a schedule again whose run could not be created."""


def schedule_triggers(workflow: Workflow) -> list[tuple[int, ScheduleTrigger]]:
    """The schedule triggers of a saved workflow with their index in `triggers`.

    Read one by one, so a trigger that no longer parses (saved by an older version)
    costs only itself.
    """
    found = []
    for index, item in enumerate(workflow.definition.triggers):
        if not isinstance(item, dict) or item.get("type") != "schedule":
            continue
        parsed, issues = parse_triggers([item])
        if parsed and not issues and isinstance(parsed[0], ScheduleTrigger):
            found.append((index, parsed[0]))
    return found


@dataclass
class _Entry:
    """One schedule as this process follows it."""

    workflow: Workflow
    trigger: ScheduleTrigger
    cursor: datetime
    """The last slot handled (fired, or passed over while paused or per catch_up)."""
    due: datetime | None = None
    """The first slot after `cursor`; None when the schedule has ended."""
    failures: int = 0
    retry_at: datetime | None = None

    @property
    def paused(self) -> bool:
        return is_paused(self.workflow.definition)

    def advance(self, cursor: datetime) -> None:
        self.cursor = max(self.cursor, cursor)
        self.due = next_slot(self.trigger, self.cursor)

    def wake_at(self) -> datetime | None:
        if self.paused or self.due is None:
            return None
        if self.retry_at is not None and self.retry_at > self.due:
            return self.retry_at
        return self.due


class Scheduler:
    """Fires the schedules of every workflow in the store, in one process."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        fire: Fire,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store = store
        self.settings = settings
        self.fire = fire
        self.clock = clock
        self._workflows: dict[str, dict[str, _Entry]] = {}
        """The schedules followed: workflow id -> schedule key -> entry."""
        self._changed: set[str] = set()
        self._wake = asyncio.Event()
        self._next_full_load: datetime | None = None

    # Called by the control listener in every process (`Ductwork.trigger_listeners`).
    def changed(self, workflow_id: str) -> None:
        """A workflow's triggers may have changed: re-read it before the next slot."""
        self._changed.add(workflow_id)
        self._wake.set()

    @property
    def schedules(self) -> list[tuple[str, str, datetime | None]]:
        """(workflow id, schedule key, next slot) of every schedule followed (for tests)."""
        return [
            (workflow_id, key, entry.wake_at())
            for workflow_id, entries in self._workflows.items()
            for key, entry in entries.items()
        ]

    def _entries(self) -> list[_Entry]:
        return [entry for entries in self._workflows.values() for entry in entries.values()]

    async def run_forever(self) -> None:
        """Load, fire what is due, sleep until the next slot or a change; until cancelled."""
        while True:
            self._wake.clear()
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The store is unreachable (load failed): try again soon, keep cursors.
                log.exception("scheduler step failed; trying again in 1 s")
                self._next_full_load = self.clock() + timedelta(seconds=1)
            delay = self._seconds_to_next_wake()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def step(self) -> None:
        """Re-read what changed (or everything, when the refresh is due), then fire."""
        now = self.clock()
        if self._next_full_load is None or now >= self._next_full_load:
            self._changed.clear()
            await self.load_all()
        elif self._changed:
            changed, self._changed = self._changed, set()
            for workflow_id in changed:
                await self.load_workflow(workflow_id)
        await self.fire_due()

    async def load_all(self) -> None:
        """Follow exactly the schedules the store lists now."""
        workflows = await self.store.list_scheduled_workflows()
        self._next_full_load = self.clock() + timedelta(
            seconds=self.settings.schedule_refresh_seconds
        )
        listed = {workflow.id for workflow in workflows}
        for workflow_id in self._workflows.keys() - listed:
            del self._workflows[workflow_id]
        for workflow in workflows:
            await self._apply_or_log(workflow)

    async def load_workflow(self, workflow_id: str) -> None:
        """Follow one workflow's schedules as stored now (none when it is gone)."""
        before = sorted(self._workflows.get(workflow_id, {}))
        workflow = await self.store.get_workflow(workflow_id)
        if workflow is None:
            self._workflows.pop(workflow_id, None)
        else:
            await self._apply_or_log(workflow)
        after = sorted(self._workflows.get(workflow_id, {}))
        if before or after:
            paused = workflow is not None and is_paused(workflow.definition)
            log.info(
                "workflow %s changed: schedules %s%s",
                workflow_id,
                ", ".join(after) or "none",
                " (paused)" if paused else "",
            )

    async def _apply_or_log(self, workflow: Workflow) -> None:
        """`_apply`, logging a failure: one workflow that cannot be loaded must not stop
        the schedules of every other (it keeps what was loaded before and is tried
        again at the next refresh or change)."""
        try:
            await self._apply(workflow)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(
                "workflow %s: could not load its schedules; trying again at the next refresh",
                workflow.id,
            )

    async def _apply(self, workflow: Workflow) -> None:
        old = self._workflows.get(workflow.id, {})
        if old and next(iter(old.values())).workflow.version == workflow.version:
            return  # seen already (a refresh): nothing to parse again
        now = self.clock()
        entries: dict[str, _Entry] = {}
        for _, trigger in schedule_triggers(workflow):
            key = trigger.key()
            entry = old.get(key)
            if entry is None:
                cursor = await self._first_cursor(workflow, trigger, now)
                entry = _Entry(workflow=workflow, trigger=trigger, cursor=cursor)
            else:
                if entry.paused != is_paused(workflow.definition):
                    # Slots that pass while paused are not caught up after the resume.
                    entry.cursor = max(entry.cursor, now)
                # Same key: same timing; the inputs, catch_up or the nodes may be new.
                entry.workflow, entry.trigger = workflow, trigger
            entry.advance(entry.cursor)
            entries[key] = entry
        if entries:
            self._workflows[workflow.id] = entries
        else:
            self._workflows.pop(workflow.id, None)

    async def _first_cursor(
        self, workflow: Workflow, trigger: ScheduleTrigger, now: datetime
    ) -> datetime:
        if is_paused(workflow.definition):
            return now
        key = await self.store.latest_idempotency_key(workflow.id, key_prefix(trigger))
        last = None if key is None else slot_of_key(trigger, key, not_after=now + FUTURE_SLOT_GRACE)
        if last is None:
            return now  # never fired: no retroactive runs
        return max(last, workflow.updated_at)

    async def fire_due(self) -> None:
        """Fire every due slot of every schedule (per its catch_up), oldest first."""
        now = self.clock()
        due = []
        for entry in self._entries():
            wake = entry.wake_at()  # None while paused
            if wake is not None and wake <= now:
                due.append(entry)
        if not due:
            return
        semaphore = asyncio.Semaphore(FIRE_CONCURRENCY)

        async def fire(entry: _Entry) -> None:
            async with semaphore:
                await self._fire_entry(entry, now)

        await asyncio.gather(*(fire(entry) for entry in due))

    async def _fire_entry(self, entry: _Entry, now: datetime) -> None:
        slots = due_slots(
            entry.trigger,
            entry.cursor,
            now,
            grace_seconds=self.settings.schedule_misfire_grace_seconds,
            max_catch_up=self.settings.schedule_max_catch_up,
        )
        for slot in slots:
            try:
                await self.fire(entry.workflow, entry.trigger, slot)
            except asyncio.CancelledError:
                raise
            except Exception:
                entry.failures += 1
                delay = min(2.0 ** (entry.failures - 1), MAX_RETRY_SECONDS)
                entry.retry_at = now + timedelta(seconds=delay)
                log.exception(
                    "schedule %s of workflow %s: could not start the run of slot %s "
                    "(attempt %d); trying again in %.0f s",
                    entry.trigger.key(),
                    entry.workflow.id,
                    slot.isoformat(),
                    entry.failures,
                    delay,
                )
                return
            entry.cursor = slot
        entry.failures, entry.retry_at = 0, None
        # Slots up to now were fired or, per catch_up, passed over.
        entry.advance(now)

    def _seconds_to_next_wake(self) -> float:
        now = self.clock()
        wakes = [wake for entry in self._entries() if (wake := entry.wake_at())]
        if self._next_full_load is not None:
            wakes.append(self._next_full_load)
        if not wakes:
            return self.settings.schedule_refresh_seconds
        return max(0.0, (min(wakes) - now).total_seconds())


@dataclass(frozen=True)
class ScheduleStatus:
    """One schedule trigger of a workflow as `GET /workflows/{id}/schedule` shows it."""

    index: int
    key: str
    spec: ScheduleTrigger
    paused: bool
    last_slot: datetime | None
    next_slots: list[datetime]


async def describe_schedules(
    store: Store, workflow: Workflow, now: datetime, count: int = 5
) -> list[ScheduleStatus]:
    """Each schedule trigger of `workflow`: the last slot fired and the next `count`.

    The next slots are those after now (or after the last slot, when a clock ahead of
    this one fired it already): the times it fires at, or would once resumed.
    """
    statuses = []
    for index, trigger in schedule_triggers(workflow):
        key = await store.latest_idempotency_key(workflow.id, key_prefix(trigger))
        last = None if key is None else slot_of_key(trigger, key, not_after=now + FUTURE_SLOT_GRACE)
        after = now if last is None else max(now, last)
        statuses.append(
            ScheduleStatus(
                index=index,
                key=trigger.key(),
                spec=trigger,
                paused=is_paused(workflow.definition),
                last_slot=last,
                next_slots=next_fire_times(trigger, after, count),
            )
        )
    return statuses
