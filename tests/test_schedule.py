"""Schedule math (`ductwork.triggers.schedule`): slots, slot keys, DST, what is due.

Pure functions: every time is given, nothing waits.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ductwork.triggers.schedule import (
    due_slots,
    format_slot,
    next_fire_times,
    next_slot,
    parse_slot,
    run_trigger,
    slot_key,
    slot_of_key,
    slots_after,
    slots_until,
)
from ductwork.triggers.spec import ScheduleTrigger

BERLIN = ZoneInfo("Europe/Berlin")


def schedule(**fields: Any) -> ScheduleTrigger:
    return ScheduleTrigger.model_validate({"type": "schedule", **fields})


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type, misc]


def berlin(*parts: int, fold: int = 0) -> datetime:
    """A Berlin wall-clock time as the UTC instant (aware times in an ambiguous hour
    never compare equal across zones)."""
    return datetime(*parts, tzinfo=BERLIN, fold=fold).astimezone(UTC)  # type: ignore[arg-type, misc]


def window(trigger: ScheduleTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Slots in (start, end], ascending."""
    return list(itertools.takewhile(lambda slot: slot <= end, slots_after(trigger, start)))


# Slot keys ------------------------------------------------------------------------------


def test_slot_text_is_utc_whole_seconds_and_sorts_like_time() -> None:
    slot = berlin(2025, 3, 30, 3, 0)
    assert format_slot(slot) == "2025-03-30T01:00:00Z"
    assert parse_slot("2025-03-30T01:00:00Z") == slot
    times = [utc(2025, 1, 1) + timedelta(seconds=7**n) for n in range(12)]
    assert sorted(format_slot(t) for t in reversed(times)) == [format_slot(t) for t in times]


def test_slot_key_carries_the_schedule_key_and_reads_back() -> None:
    named = schedule(id="nightly", cron="0 3 * * *")
    slot = utc(2025, 6, 1, 3)
    assert slot_key(named, slot) == "schedule:nightly:2025-06-01T03:00:00Z"
    assert slot_of_key(named, slot_key(named, slot)) == slot
    other = schedule(id="other", cron="0 3 * * *")
    assert slot_of_key(other, slot_key(named, slot)) is None
    assert slot_of_key(named, "schedule:nightly:not-a-time") is None
    # A slot later than `not_after` is no slot this schedule fired (a forged or odd key).
    assert slot_of_key(named, slot_key(named, slot), not_after=slot) == slot
    assert slot_of_key(named, slot_key(named, slot), not_after=slot - timedelta(seconds=1)) is None
    assert slot_of_key(named, "schedule:nightly:9999-12-31T23:59:59Z", not_after=slot) is None
    assert run_trigger(named, slot) == {
        "type": "schedule",
        "key": "nightly",
        "slot": "2025-06-01T03:00:00Z",
    }


def test_unnamed_schedules_key_by_timing_not_inputs() -> None:
    base = schedule(cron="*/5 * * * *")
    assert schedule(cron="*/5 * * * *", inputs={"a": 1}).key() == base.key()
    assert schedule(cron="*/5 * * * *", catch_up="all").key() == base.key()
    assert schedule(cron="*/10 * * * *").key() != base.key()
    assert schedule(cron="*/5 * * * *", timezone="Europe/Berlin").key() != base.key()


# every_seconds ----------------------------------------------------------------------------


def test_every_seconds_lies_on_the_epoch_grid_whoever_asks() -> None:
    every = schedule(every_seconds=7)
    # Two processes starting at different times agree on the grid.
    early = window(every, utc(2025, 1, 1, 0, 0, 0), utc(2025, 1, 1, 0, 1, 0))
    late = window(every, utc(2025, 1, 1, 0, 0, 31, 500_000), utc(2025, 1, 1, 0, 1, 0))
    assert late == [slot for slot in early if slot > utc(2025, 1, 1, 0, 0, 31, 500_000)]
    assert all(int(slot.timestamp()) % 7 == 0 for slot in early)
    assert [b - a for a, b in itertools.pairwise(early)] == [timedelta(seconds=7)] * (
        len(early) - 1
    )


def test_every_seconds_is_strictly_after_and_until_is_inclusive() -> None:
    every = schedule(every_seconds=10)
    on_slot = utc(2025, 1, 1, 0, 0, 10)
    assert next_slot(every, on_slot) == utc(2025, 1, 1, 0, 0, 20)
    assert next(slots_until(every, on_slot)) == on_slot
    assert next(slots_until(every, on_slot - timedelta(microseconds=1))) == utc(2025, 1, 1)


def test_every_seconds_counts_from_start_at_rounded_up_to_a_second() -> None:
    every = schedule(every_seconds=60, start_at="2025-05-05T10:00:00.250000Z")
    first = utc(2025, 5, 5, 10, 0, 1)
    assert next_slot(every, utc(2020, 1, 1)) == first
    assert next_fire_times(every, utc(2025, 5, 5, 10, 30), 2) == [
        first + timedelta(minutes=30),
        first + timedelta(minutes=31),
    ]
    assert list(slots_until(every, first + timedelta(seconds=150))) == [
        first + timedelta(seconds=120),
        first + timedelta(seconds=60),
        first,
    ]
    assert list(slots_until(every, first - timedelta(seconds=1))) == []


def test_start_at_without_offset_is_read_in_the_timezone() -> None:
    every = schedule(every_seconds=3600, start_at="2025-07-01T09:00:00", timezone="Europe/Berlin")
    assert next_slot(every, utc(2025, 1, 1)) == utc(2025, 7, 1, 7)


def test_end_at_ends_the_series() -> None:
    every = schedule(every_seconds=60, end_at="2025-01-01T00:03:00Z")
    assert next_fire_times(every, utc(2025, 1, 1), 5) == [
        utc(2025, 1, 1, 0, 1),
        utc(2025, 1, 1, 0, 2),
        utc(2025, 1, 1, 0, 3),
    ]
    assert next_slot(every, utc(2025, 1, 1, 0, 3)) is None
    assert next(slots_until(every, utc(2030, 1, 1))) == utc(2025, 1, 1, 0, 3)


# cron -----------------------------------------------------------------------------------


def test_five_field_cron_in_utc() -> None:
    weekdays = schedule(cron="0 9 * * MON-FRI")
    # 2025-01-03 is a Friday.
    assert next_fire_times(weekdays, utc(2025, 1, 3, 9), 3) == [
        utc(2025, 1, 6, 9),
        utc(2025, 1, 7, 9),
        utc(2025, 1, 8, 9),
    ]


def test_six_field_cron_has_seconds_first() -> None:
    every_ten = schedule(cron="*/10 * * * * *")
    assert next_fire_times(every_ten, utc(2025, 1, 1, 0, 0, 5, 123), 3) == [
        utc(2025, 1, 1, 0, 0, 10),
        utc(2025, 1, 1, 0, 0, 20),
        utc(2025, 1, 1, 0, 0, 30),
    ]


def test_cron_respects_start_at_and_end_at() -> None:
    hourly = schedule(
        cron="0 * * * *", start_at="2025-01-01T10:30:00Z", end_at="2025-01-01T13:00:00Z"
    )
    assert next_fire_times(hourly, utc(2024, 1, 1), 5) == [
        utc(2025, 1, 1, 11),
        utc(2025, 1, 1, 12),
        utc(2025, 1, 1, 13),
    ]
    assert list(slots_until(hourly, utc(2030, 1, 1))) == [
        utc(2025, 1, 1, 13),
        utc(2025, 1, 1, 12),
        utc(2025, 1, 1, 11),
    ]


# DST: Europe/Berlin springs forward 2025-03-30 02:00 -> 03:00, falls back 2025-10-26
# 03:00 -> 02:00.


def test_spring_forward_a_time_in_the_skipped_hour_fires_once_at_the_jump() -> None:
    nightly = schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    fired = next_fire_times(nightly, berlin(2025, 3, 29, 12, 0), 3)
    assert fired == [
        berlin(2025, 3, 30, 3, 0),
        berlin(2025, 3, 31, 2, 30),
        berlin(2025, 4, 1, 2, 30),
    ]


def test_spring_forward_two_times_in_the_skipped_hour_fire_once() -> None:
    twice = schedule(cron="0,30 2 * * *", timezone="Europe/Berlin")
    day = window(twice, berlin(2025, 3, 30, 0, 0), berlin(2025, 3, 30, 23, 0))
    assert day == [berlin(2025, 3, 30, 3, 0)]


def test_spring_forward_interval_jobs_skip_the_missing_hour() -> None:
    half_hourly = schedule(cron="*/30 * * * *", timezone="Europe/Berlin")
    fired = window(half_hourly, berlin(2025, 3, 30, 1, 0), berlin(2025, 3, 30, 4, 0))
    assert [slot.astimezone(BERLIN).strftime("%H:%M") for slot in fired] == [
        "01:30",
        "03:00",
        "03:30",
        "04:00",
    ]
    # An hour of wall clock, half an hour of real time between 01:30 and 03:00 local.
    assert fired[1] - fired[0] == timedelta(minutes=30)


def test_fall_back_a_time_in_the_repeated_hour_fires_once() -> None:
    nightly = schedule(cron="30 2 * * *", timezone="Europe/Berlin")
    day = window(nightly, berlin(2025, 10, 26, 0, 0), berlin(2025, 10, 26, 23, 0))
    assert day == [berlin(2025, 10, 26, 2, 30, fold=0)]  # the first 02:30 (CEST)
    # Asked from inside the second pass of the hour, it does not step back in time.
    second_pass = berlin(2025, 10, 26, 2, 15, fold=1)
    assert next_slot(nightly, second_pass) == berlin(2025, 10, 27, 2, 30)


def test_fall_back_interval_jobs_fire_in_both_passes_of_the_hour() -> None:
    half_hourly = schedule(cron="*/30 * * * *", timezone="Europe/Berlin")
    fired = window(half_hourly, berlin(2025, 10, 26, 1, 45), berlin(2025, 10, 26, 3, 0))
    assert fired == [
        berlin(2025, 10, 26, 2, 0, fold=0),
        berlin(2025, 10, 26, 2, 30, fold=0),
        berlin(2025, 10, 26, 2, 0, fold=1),
        berlin(2025, 10, 26, 2, 30, fold=1),
        berlin(2025, 10, 26, 3, 0),
    ]
    assert [b - a for a, b in itertools.pairwise(fired)] == [timedelta(minutes=30)] * 4


def test_six_field_times_follow_the_clock_through_dst() -> None:
    """cronsim keeps Debian's DST handling to 5-field expressions (docs/schedules.md)."""
    nightly = schedule(cron="0 30 2 * * *", timezone="Europe/Berlin")
    spring = window(nightly, berlin(2025, 3, 30, 0, 0), berlin(2025, 3, 30, 23, 0))
    fall = window(nightly, berlin(2025, 10, 26, 0, 0), berlin(2025, 10, 26, 23, 0))
    assert spring == []
    assert fall == [berlin(2025, 10, 26, 2, 30, fold=0), berlin(2025, 10, 26, 2, 30, fold=1)]


@pytest.mark.parametrize(
    "cron",
    ["30 2 * * *", "0,30 2 * * *", "*/30 * * * *", "15 1-3 * * *", "*/20 * * * * *", "0 0 * * 0"],
)
@pytest.mark.parametrize(
    "start",
    [utc(2025, 3, 30, 0), utc(2025, 10, 26, 0), utc(2025, 6, 1)],
    ids=["spring", "fall", "summer"],
)
def test_walking_back_finds_the_slots_walking_forward_does(cron: str, start: datetime) -> None:
    trigger = schedule(cron=cron, timezone="Europe/Berlin")
    hours = 3 if cron.count(" ") == 5 else 24 * 8 if cron == "0 0 * * 0" else 30
    end = start + timedelta(hours=hours)
    forward = window(trigger, start, end)
    backward = list(itertools.takewhile(lambda slot: slot > start, slots_until(trigger, end)))
    assert forward, "the window should hold slots"
    assert backward == list(reversed(forward))
    assert len(set(forward)) == len(forward)


# What is due ------------------------------------------------------------------------------


def due(trigger: ScheduleTrigger, cursor: datetime, now: datetime, **options: Any) -> list[str]:
    options = {"grace_seconds": 60.0, "max_catch_up": 100, **options}
    return [slot.strftime("%H:%M:%S") for slot in due_slots(trigger, cursor, now, **options)]


def test_slots_after_the_cursor_and_within_grace_fire_in_order() -> None:
    every = schedule(every_seconds=1)
    now = utc(2025, 1, 1, 12, 0, 3, 400_000)
    assert due(every, utc(2025, 1, 1, 12, 0, 0), now) == ["12:00:01", "12:00:02", "12:00:03"]
    assert due(every, utc(2025, 1, 1, 12, 0, 3), now) == []


@pytest.mark.parametrize(
    ("catch_up", "expected"),
    [
        ("none", ["12:10:00"]),
        ("latest", ["12:09:00", "12:10:00"]),
        ("all", ["12:06:00", "12:07:00", "12:08:00", "12:09:00", "12:10:00"]),
    ],
)
def test_missed_slots_follow_catch_up(catch_up: str, expected: list[str]) -> None:
    minutely = schedule(cron="* * * * *", catch_up=catch_up)
    # Down from 12:05:30; back at 12:10:20: 12:10 is on time, 12:06..12:09 were missed.
    assert due(minutely, utc(2025, 1, 1, 12, 5), utc(2025, 1, 1, 12, 10, 20)) == expected


def test_latest_alone_when_nothing_is_on_time() -> None:
    daily = schedule(cron="0 9 * * *")
    fired = due_slots(
        daily, utc(2025, 1, 1, 9), utc(2025, 1, 5, 8), grace_seconds=60, max_catch_up=100
    )
    assert fired == [utc(2025, 1, 4, 9)]


def test_catching_up_is_bounded_and_keeps_the_newest() -> None:
    every = schedule(every_seconds=1, catch_up="all")
    now = utc(2025, 1, 1, 12)
    # A year of missed one-second slots: only the newest max_catch_up, found walking back.
    fired = due_slots(every, now - timedelta(days=365), now, grace_seconds=0.5, max_catch_up=3)
    assert fired == [now - timedelta(seconds=2), now - timedelta(seconds=1), now]
    on_time = due_slots(every, now - timedelta(days=365), now, grace_seconds=30, max_catch_up=5)
    assert on_time == [now - timedelta(seconds=n) for n in range(4, -1, -1)]


def test_a_slot_exactly_at_now_is_due_and_one_before_the_cursor_never() -> None:
    every = schedule(every_seconds=5)
    now = utc(2025, 1, 1, 0, 0, 10)
    assert due_slots(every, now - timedelta(seconds=5), now, grace_seconds=1, max_catch_up=9) == [
        now
    ]
    assert due_slots(every, now, now, grace_seconds=1, max_catch_up=9) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"every_seconds": 366 * 86_400},
        {"every_seconds": 7, "start_at": "9998-12-31T23:59:00Z"},
        {"cron": "*/10 * * * * *", "start_at": "9998-12-31T23:59:00Z"},
        {"cron": "0 0 1 1 *", "timezone": "Pacific/Kiritimati"},
    ],
)
def test_slots_stop_at_the_end_of_the_calendar(fields: dict[str, Any]) -> None:
    """No OverflowError: the slots a datetime can hold, then none."""
    trigger = schedule(**fields)
    late = utc(9999, 12, 31, 23, 58)
    after = list(slots_after(trigger, late))
    assert after == sorted(after) and all(slot > late for slot in after)
    assert len(after) < 10_000
    assert next_fire_times(trigger, late, 5000) == after[:5000]
    early = list(itertools.islice(slots_until(trigger, utc(1, 1, 2)), 10_000))
    assert len(early) < 10_000
