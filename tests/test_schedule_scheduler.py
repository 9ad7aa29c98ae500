"""The scheduler (`ductwork.triggers.scheduler`) on a real store, with a hand-moved clock:
each step is driven by the test, so what fires is decided, never raced. SQLite throughout;
the store calls it depends on (slot keys, DuplicateRun, the last slot fired) also on
PostgreSQL and MongoDB (`test_on_every_store`).

Runs are created through `Ductwork.fire_schedule`, the path the background task uses.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ductwork.models import Run, RunStatus, Workflow, WorkflowDefinition, utcnow
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from ductwork.store.base import RunQuery
from ductwork.triggers.schedule import format_slot
from ductwork.triggers.scheduler import Scheduler, describe_schedules
from ductwork.triggers.spec import ScheduleTrigger


class Clock:
    """A clock the test moves; starts on a whole minute after the real now (so a
    workflow's real `updated_at` is in its past)."""

    def __init__(self) -> None:
        self.now = utcnow().replace(second=0, microsecond=0) + timedelta(minutes=2)

    def __call__(self) -> datetime:
        return self.now

    def to(self, moment: datetime) -> None:
        assert moment >= self.now, "the clock only moves forward"
        self.now = moment

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


async def open_app(tmp_path: Path, store_url: str) -> Ductwork:
    """An app whose store is open; no background scheduler (the tests drive their own)."""
    application = build(Settings(data_dir=tmp_path, store_url=store_url, scheduler=False))
    await application.store.start()
    return application


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[Ductwork]:
    """On SQLite; `test_on_every_store` runs the heart of it on the others."""
    application = await open_app(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    yield application
    await application.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_scheduler(app: Ductwork, clock: Clock, fire: Any = None, **settings: Any) -> Scheduler:
    return Scheduler(
        app.store,
        app.settings.model_copy(update=settings),
        fire or app.fire_schedule,
        clock=clock,
    )


def definition(*schedules: dict[str, Any], status: str = "active") -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "name": "scheduled",
            "nodes": [{"id": "start", "type": "start"}, {"id": "end", "type": "end"}],
            "edges": [{"from": "start", "to": "end"}],
            "status": status,
            "triggers": [{"type": "schedule", **fields} for fields in schedules],
        }
    )


async def runs_of(app: Ductwork, workflow_id: str) -> list[Run]:
    runs = await app.store.find_runs(RunQuery(workflow_id=workflow_id), limit=10_000)
    return sorted(runs, key=lambda run: str(run.idempotency_key))


async def slots_fired(app: Ductwork, workflow_id: str, key: str | None = None) -> list[datetime]:
    """The slots that started runs (each listed once per run), oldest first."""
    slots = [
        datetime.strptime(run.trigger["slot"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        for run in await runs_of(app, workflow_id)
        if run.trigger is not None and (key is None or run.trigger["key"] == key)
    ]
    return sorted(slots)


def grid(moment: datetime, seconds: int) -> datetime:
    """The last slot of an every-`seconds` schedule at or before `moment`."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + (moment - epoch) // timedelta(seconds=seconds) * timedelta(seconds=seconds)


# Firing ----------------------------------------------------------------------------------


async def test_a_new_schedule_fires_each_slot_from_now_on_once(app: Ductwork, clock: Clock) -> None:
    workflow = await app.create_workflow(
        definition({"every_seconds": 10, "inputs": {"greeting": "hi"}, "id": "tick"})
    )
    clock.advance(3)
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    assert await slots_fired(app, workflow.id) == []  # no retroactive run for 00:00

    first = grid(clock.now, 10) + timedelta(seconds=10)
    assert scheduler.schedules == [(workflow.id, "tick", first)]
    clock.to(first + timedelta(milliseconds=2))
    await scheduler.step()
    await scheduler.step()
    assert await slots_fired(app, workflow.id) == [first]

    clock.advance(25)
    await scheduler.step()
    assert await slots_fired(app, workflow.id) == [
        first + timedelta(seconds=n) for n in (0, 10, 20)
    ]

    run = (await runs_of(app, workflow.id))[0]
    assert run.status is RunStatus.QUEUED
    assert run.trigger == {
        "type": "schedule",
        "key": "tick",
        "slot": first.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    assert run.idempotency_key == "schedule:tick:" + run.trigger["slot"]
    assert run.variables == {"greeting": "hi"}
    assert run.workflow_version == workflow.version
    assert app.queue.pending() == 3  # type: ignore[attr-defined]


async def test_two_schedulers_fire_each_slot_once(app: Ductwork, clock: Clock) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 1}))
    first, second = make_scheduler(app, clock), make_scheduler(app, clock)
    await asyncio.gather(first.step(), second.step())
    start = clock.now
    for _ in range(12):
        clock.advance(0.5)
        await asyncio.gather(first.step(), second.step())
    slots = await slots_fired(app, workflow.id)
    assert Counter(slots).most_common(1)[0][1] == 1
    assert slots == [start + timedelta(seconds=n) for n in range(1, 7)]


@pytest.mark.parametrize(
    ("catch_up", "fired_after_restart"),
    [("none", []), ("latest", [5]), ("all", [2, 3, 4, 5])],
)
async def test_slots_missed_while_nothing_ran_follow_catch_up(
    app: Ductwork, clock: Clock, catch_up: str, fired_after_restart: list[int]
) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 60, "catch_up": catch_up}))
    before = make_scheduler(app, clock, schedule_misfire_grace_seconds=5)
    await before.step()
    start = clock.now  # on a whole minute
    clock.advance(60.5)
    await before.step()
    assert await slots_fired(app, workflow.id) == [start + timedelta(minutes=1)]

    # Everything stops; a new process starts 4.5 minutes later (slots 2..5 were missed).
    clock.advance(4 * 60 + 10)
    after = make_scheduler(app, clock, schedule_misfire_grace_seconds=5)
    await after.step()
    expected = [1, *fired_after_restart]
    assert await slots_fired(app, workflow.id) == [start + timedelta(minutes=n) for n in expected]
    # And it keeps its rhythm.
    clock.to(start + timedelta(minutes=6, milliseconds=1))
    await after.step()
    assert (await slots_fired(app, workflow.id))[-1] == start + timedelta(minutes=6)


async def test_catching_up_all_is_bounded(app: Ductwork, clock: Clock) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 1, "catch_up": "all"}))
    scheduler = make_scheduler(app, clock, schedule_misfire_grace_seconds=0.5)
    await scheduler.step()
    clock.advance(1)
    await scheduler.step()
    clock.advance(3600)
    again = make_scheduler(app, clock, schedule_misfire_grace_seconds=0.5, schedule_max_catch_up=4)
    await again.step()
    slots = await slots_fired(app, workflow.id)
    assert slots[1:] == [clock.now - timedelta(seconds=n) for n in (3, 2, 1, 0)]


# Pausing -----------------------------------------------------------------------------------


async def test_a_paused_workflow_fires_nothing_and_its_pause_is_not_caught_up(
    app: Ductwork, clock: Clock
) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 60, "catch_up": "all"}))
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    start = clock.now
    clock.advance(60)
    await scheduler.step()

    paused = await app.set_paused(workflow.id, True)
    assert paused.definition.status == "paused" and paused.version == workflow.version + 1
    scheduler.changed(workflow.id)
    for _ in range(4):
        clock.advance(60)
        await scheduler.step()
    assert scheduler.schedules == [(workflow.id, _key(paused), None)]

    await app.set_paused(workflow.id, False)
    scheduler.changed(workflow.id)
    clock.advance(30)
    await scheduler.step()
    clock.advance(30)
    await scheduler.step()
    assert await slots_fired(app, workflow.id) == [
        start + timedelta(minutes=1),
        start + timedelta(minutes=6),
    ]


def _key(workflow: Workflow) -> str:
    return ScheduleTrigger.model_validate(workflow.definition.triggers[0]).key()


async def test_pausing_twice_makes_one_version_and_manual_runs_still_start(
    app: Ductwork,
) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 60}))
    once = await app.set_paused(workflow.id, True)
    twice = await app.set_paused(workflow.id, True)
    assert once.version == twice.version == workflow.version + 1
    run, created = await app.execute(workflow.id, wait=False, trigger={"type": "manual"})
    assert created and run.status is RunStatus.QUEUED


async def test_a_pause_no_scheduler_saw_is_not_caught_up_by_the_next_one(
    app: Ductwork, clock: Clock
) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 60, "catch_up": "all"}))
    scheduler = make_scheduler(app, clock, schedule_misfire_grace_seconds=5)
    await scheduler.step()
    start = clock.now
    clock.advance(60)
    await scheduler.step()
    # No scheduler runs while the workflow is paused at +1:30 and resumed at +3:30.
    stored = await app.get_workflow(workflow.id)
    paused = stored.definition.model_copy(update={"status": "paused"})
    await app.store.update_workflow(workflow.id, paused, start + timedelta(seconds=90))
    await app.store.update_workflow(workflow.id, stored.definition, start + timedelta(seconds=210))
    clock.to(start + timedelta(seconds=290))
    await make_scheduler(app, clock, schedule_misfire_grace_seconds=5).step()
    # 2 and 3 passed while paused; 4 came after the resume and was missed: caught up.
    assert await slots_fired(app, workflow.id) == [
        start + timedelta(minutes=1),
        start + timedelta(minutes=4),
    ]


# Changes -----------------------------------------------------------------------------------


async def test_a_changed_timing_starts_a_new_series_and_a_removed_schedule_stops(
    app: Ductwork, clock: Clock
) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 10}))
    old_key = _key(workflow)
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    clock.advance(10)
    await scheduler.step()
    assert len(await slots_fired(app, workflow.id, old_key)) == 1

    changed = await app.update_workflow(workflow.id, definition({"every_seconds": 30}))
    new_key = _key(changed)
    scheduler.changed(workflow.id)
    await scheduler.step()
    clock.advance(20)
    await scheduler.step()
    assert len(await slots_fired(app, workflow.id, old_key)) == 1
    assert await slots_fired(app, workflow.id, new_key) == [clock.now]

    await app.update_workflow(workflow.id, definition())
    scheduler.changed(workflow.id)
    clock.advance(60)
    await scheduler.step()
    assert scheduler.schedules == []
    assert len(await slots_fired(app, workflow.id)) == 2


async def test_changed_inputs_keep_the_series_and_reach_the_next_run(
    app: Ductwork, clock: Clock
) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 10, "inputs": {"n": 1}}))
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    clock.advance(10)
    await scheduler.step()
    await app.update_workflow(workflow.id, definition({"every_seconds": 10, "inputs": {"n": 2}}))
    scheduler.changed(workflow.id)
    clock.advance(10)
    await scheduler.step()
    runs = await runs_of(app, workflow.id)
    assert [run.variables for run in runs] == [{"n": 1}, {"n": 2}]
    assert [run.workflow_version for run in runs] == [1, 2]


async def test_a_deleted_workflow_is_forgotten(app: Ductwork, clock: Clock) -> None:
    workflow = await app.create_workflow(definition({"every_seconds": 10}))
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    await app.delete_workflow(workflow.id)
    scheduler.changed(workflow.id)
    clock.advance(10)
    await scheduler.step()
    assert scheduler.schedules == []
    assert await slots_fired(app, workflow.id) == []


async def test_the_refresh_finds_schedules_no_message_announced(
    app: Ductwork, clock: Clock
) -> None:
    scheduler = make_scheduler(app, clock, schedule_refresh_seconds=10)
    await scheduler.step()
    workflow = await app.create_workflow(definition({"every_seconds": 5}))
    clock.advance(5)
    await scheduler.step()
    assert scheduler.schedules == []  # nobody told it, and the refresh is not due
    clock.advance(5)
    await scheduler.step()
    assert [entry[0] for entry in scheduler.schedules] == [workflow.id]


async def test_end_at_ends_the_schedule(app: Ductwork, clock: Clock) -> None:
    end = clock.now + timedelta(seconds=20)
    workflow = await app.create_workflow(
        definition({"every_seconds": 10, "end_at": end.isoformat()})
    )
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    for _ in range(5):
        clock.advance(10)
        await scheduler.step()
    assert await slots_fired(app, workflow.id) == [end - timedelta(seconds=10), end]
    assert scheduler.schedules == [(workflow.id, _key(workflow), None)]


async def test_a_run_that_could_not_be_created_is_tried_again(app: Ductwork, clock: Clock) -> None:
    failures = [OSError("store unreachable")] * 2

    async def flaky_fire(workflow: Workflow, trigger: ScheduleTrigger, slot: datetime) -> object:
        if failures:
            raise failures.pop()
        return await app.fire_schedule(workflow, trigger, slot)

    workflow = await app.create_workflow(definition({"every_seconds": 10, "catch_up": "all"}))
    scheduler = make_scheduler(app, clock, fire=flaky_fire)
    await scheduler.step()
    slot = grid(clock.now, 10) + timedelta(seconds=10)
    clock.to(slot)
    await scheduler.step()  # fails; tried again in 1 s
    ((_, _, retry_at),) = scheduler.schedules
    assert retry_at == slot + timedelta(seconds=1)
    clock.advance(1)
    await scheduler.step()  # fails; tried again in 2 s
    clock.advance(2)
    await scheduler.step()
    assert await slots_fired(app, workflow.id) == [slot]


@pytest.mark.parametrize("kind", ["postgresql", "mongodb"])
async def test_on_every_store(
    tmp_path: Path, store_url_factory: Callable[[str], str], clock: Clock, kind: str
) -> None:
    """Two schedulers fire each slot once; a third, started after slots were missed,
    resumes from the last slot fired and catches up the newest missed one."""
    app = await open_app(tmp_path, store_url_factory(kind))
    try:
        workflow = await app.create_workflow(definition({"every_seconds": 1, "id": "tick"}))
        first, second = make_scheduler(app, clock), make_scheduler(app, clock)
        await asyncio.gather(first.step(), second.step())
        start = clock.now
        for _ in range(3):
            clock.advance(1)
            await asyncio.gather(first.step(), second.step())
        clock.advance(10.5)
        late = make_scheduler(app, clock, schedule_misfire_grace_seconds=2)
        await late.step()
        assert await slots_fired(app, workflow.id) == [
            start + timedelta(seconds=n) for n in (1, 2, 3, 11, 12, 13)
        ]
    finally:
        await app.close()


async def test_a_workflow_that_cannot_be_loaded_does_not_stop_the_others(
    app: Ductwork, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = await app.create_workflow(definition({"every_seconds": 10, "id": "tick"}))
    healthy = await app.create_workflow(definition({"every_seconds": 10, "id": "tick"}))
    latest = app.store.latest_idempotency_key

    async def failing_for_broken(workflow_id: str, prefix: str) -> str | None:
        if workflow_id == broken.id:
            raise OverflowError("date value out of range")
        return await latest(workflow_id, prefix)

    monkeypatch.setattr(app.store, "latest_idempotency_key", failing_for_broken)
    scheduler = make_scheduler(app, clock)
    await scheduler.step()  # the full load
    scheduler.changed(broken.id)
    await scheduler.step()  # one workflow's reload
    slot = grid(clock.now, 10) + timedelta(seconds=10)
    clock.to(slot)
    await scheduler.step()
    assert await slots_fired(app, healthy.id) == [slot]
    assert await slots_fired(app, broken.id) == []
    # Once it loads again, it fires too.
    monkeypatch.setattr(app.store, "latest_idempotency_key", latest)
    scheduler.changed(broken.id)
    await scheduler.step()
    clock.advance(10)
    await scheduler.step()
    assert await slots_fired(app, broken.id) == [slot + timedelta(seconds=10)]


@pytest.mark.parametrize("ahead", [timedelta(days=1), None])
async def test_a_slot_key_from_the_future_is_ignored(
    app: Ductwork, clock: Clock, ahead: timedelta | None
) -> None:
    """A stored key naming a slot far ahead of now (written before caller keys got their
    own namespace, or by a clock far off) neither suppresses slots nor breaks the view."""
    workflow = await app.create_workflow(definition({"every_seconds": 10, "id": "tick"}))
    future = "9999-12-31T23:59:59Z" if ahead is None else format_slot(clock.now + ahead)
    await app.execute(workflow.id, {}, idempotency_key=f"schedule:tick:{future}")
    scheduler = make_scheduler(app, clock)
    await scheduler.step()
    slot = grid(clock.now, 10) + timedelta(seconds=10)
    clock.to(slot)
    await scheduler.step()
    assert await slots_fired(app, workflow.id) == [slot]
    (status,) = await describe_schedules(app.store, workflow, clock.now)
    # The future key is still the greatest: it hides the real last slot, but no more.
    assert status.last_slot is None
    assert status.next_slots[0] == slot + timedelta(seconds=10)
