"""When a schedule fires: slot times, slot keys, what is due. Pure functions, no I/O.

A *slot* is one time a schedule is due, a whole second in UTC. Its key
(`schedule:{trigger.key()}:{slot}`, the slot written `%Y-%m-%dT%H:%M:%SZ`) is the
idempotency key of the run it starts, so the store lets each slot start one run
however many processes fire it (`triggers/scheduler.py`), and because the text sorts
like the time, the greatest key is the last slot fired
(`Store.latest_idempotency_key`).

Cron expressions go through cronsim, which follows Debian cron across DST changes:
a time-of-day job (`30 2 * * *`) whose time is skipped by spring-forward fires once
at the jump, and once (the first time) in the hour fall-back repeats; interval
jobs (`*/15 * * * *`) fire as the local clock passes their times, so twice in the
repeated hour. `every_seconds` slots lie on one grid counted from `start_at` (or the
Unix epoch), the same in every process whenever it started.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Final

from cronsim import CronSim

from ductwork.triggers.spec import ScheduleTrigger

SLOT_FORMAT: Final = "%Y-%m-%dT%H:%M:%SZ"
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND: Final = timedelta(seconds=1)

FUTURE_SLOT_GRACE: Final = timedelta(seconds=60)
"""How far past this process's now a stored slot may lie and still count as fired
(another process's clock may run ahead a little); later ones are ignored."""


def format_slot(slot: datetime) -> str:
    """A slot as the text its key and its run's `trigger.slot` carry (UTC, sortable)."""
    return slot.astimezone(UTC).strftime(SLOT_FORMAT)


def parse_slot(text: str) -> datetime:
    """The inverse of `format_slot` (ValueError for other text)."""
    return datetime.strptime(text, SLOT_FORMAT).replace(tzinfo=UTC)


def key_prefix(trigger: ScheduleTrigger) -> str:
    """What every slot key of this schedule starts with (`Store.latest_idempotency_key`)."""
    return f"schedule:{trigger.key()}:"


def slot_key(trigger: ScheduleTrigger, slot: datetime) -> str:
    """The idempotency key of the run `slot` starts: the same in every process."""
    return key_prefix(trigger) + format_slot(slot)


def slot_of_key(
    trigger: ScheduleTrigger, key: str, *, not_after: datetime | None = None
) -> datetime | None:
    """The slot a key of this schedule names; None for any other key.

    Also None for a slot later than `not_after` (now plus `FUTURE_SLOT_GRACE`): no
    scheduler fired it, so it must not move a cursor past slots still to come (or
    past the end of the calendar).
    """
    prefix = key_prefix(trigger)
    if not key.startswith(prefix):
        return None
    try:
        slot = parse_slot(key[len(prefix) :])
    except ValueError:
        return None
    if not_after is not None and slot > not_after:
        return None
    return slot


def _ceil_second(moment: datetime) -> datetime:
    return moment if moment.microsecond == 0 else moment.replace(microsecond=0) + _SECOND


def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _interval_anchor(trigger: ScheduleTrigger) -> datetime:
    # Rounded up so no slot comes before start_at and every slot is a whole second.
    return _ceil_second(trigger.start_at.astimezone(UTC)) if trigger.start_at else EPOCH


def slots_after(trigger: ScheduleTrigger, after: datetime) -> Iterator[datetime]:
    """The schedule's slots strictly after `after`, ascending, in UTC, up to `end_at`.

    `after` must carry a time zone. Slots before `start_at` are left out.
    """
    # Near either end of the calendar (year 1 or 9999) the next slot is past what a
    # datetime holds: the schedule simply has no more slots.
    with contextlib.suppress(OverflowError):
        yield from _slots_after(trigger, after)


def _slots_after(trigger: ScheduleTrigger, after: datetime) -> Iterator[datetime]:
    after = after.astimezone(UTC)
    end = trigger.end_at
    if trigger.every_seconds is not None:
        step = timedelta(seconds=trigger.every_seconds)
        anchor = _interval_anchor(trigger)
        index = (after - anchor) // step + 1
        if trigger.start_at is not None:
            index = max(0, index)
        slot = anchor + index * step
        while end is None or slot <= end:
            yield slot
            slot += step
        return
    assert trigger.cron is not None
    start = trigger.start_at
    # cronsim yields times after the whole second before its start, in the start's zone.
    origin = after if start is None or start <= after else start - _SECOND
    for local in CronSim(trigger.cron, origin.astimezone(trigger.zone())):
        slot = local.astimezone(UTC)
        if slot <= after or (start is not None and slot < start):
            # A naive walk through a repeated (fall-back) hour may step back in UTC.
            continue
        if end is not None and slot > end:
            return
        yield slot


def slots_until(trigger: ScheduleTrigger, until: datetime) -> Iterator[datetime]:
    """The schedule's slots at or before `until`, newest first, in UTC, from `start_at` on.

    Slots after `end_at` are left out. Ends at `start_at` (or never, for a schedule
    without one: stop iterating when you have enough).
    """
    with contextlib.suppress(OverflowError):  # see slots_after
        yield from _slots_until(trigger, until)


def _slots_until(trigger: ScheduleTrigger, until: datetime) -> Iterator[datetime]:
    until = until.astimezone(UTC)
    if trigger.end_at is not None and trigger.end_at < until:
        until = trigger.end_at.astimezone(UTC)
    start = trigger.start_at
    if trigger.every_seconds is not None:
        step = timedelta(seconds=trigger.every_seconds)
        anchor = _interval_anchor(trigger)
        index = (until - anchor) // step
        while not (start is not None and index < 0):
            yield anchor + index * step
            index -= 1
        return
    assert trigger.cron is not None
    # Reversed, cronsim starts at the whole second before a whole-second start.
    origin = _floor_second(until) + _SECOND
    previous: datetime | None = None
    for local in CronSim(trigger.cron, origin.astimezone(trigger.zone()), reverse=True):
        slot = local.astimezone(UTC)
        if slot > until or (previous is not None and slot >= previous):
            continue
        if start is not None and slot < start:
            return
        previous = slot
        yield slot


def next_slot(trigger: ScheduleTrigger, after: datetime) -> datetime | None:
    """The first slot after `after`; None when the schedule has ended."""
    return next(slots_after(trigger, after), None)


def next_fire_times(trigger: ScheduleTrigger, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` slots after `after` (fewer when `end_at` comes first)."""
    times = []
    for slot in slots_after(trigger, after):
        times.append(slot)
        if len(times) == count:
            break
    return times


def due_slots(
    trigger: ScheduleTrigger,
    cursor: datetime,
    now: datetime,
    *,
    grace_seconds: float,
    max_catch_up: int,
) -> list[datetime]:
    """The slots to fire now, oldest first: those after `cursor` (the last slot handled)
    and at or before `now`.

    A slot at most `grace_seconds` old is on time and fires. An older one was missed
    (nothing ran then) and follows `catch_up`: `none` drops it, `latest` fires only
    the newest missed slot, `all` fires each. At most `max_catch_up` slots fire at
    once, the newest ones. Walks back from `now` over at most that many slots, however
    long ago `cursor` is.
    """
    if max_catch_up < 1:
        raise ValueError("max_catch_up must be at least 1")
    cutoff = now - timedelta(seconds=grace_seconds)
    missed_wanted = {"none": 0, "latest": 1, "all": max_catch_up}[trigger.catch_up]
    fire: list[datetime] = []
    missed = 0
    for slot in slots_until(trigger, now):
        if slot <= cursor or len(fire) == max_catch_up:
            break
        if slot < cutoff:
            # Missed, and so is every older slot: keep what catch_up asks for.
            if missed == missed_wanted:
                break
            missed += 1
        fire.append(slot)
    fire.reverse()
    return fire


def run_trigger(trigger: ScheduleTrigger, slot: datetime) -> dict[str, str]:
    """The `trigger` a slot's run records: `{type: schedule, key, slot}`."""
    return {"type": "schedule", "key": trigger.key(), "slot": format_slot(slot)}
