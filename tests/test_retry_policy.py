"""Retry backoff: exponential, capped, and jittered so runs failing together spread out."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from ductwork.models import RetryPolicy


def test_jitter_zero_gives_the_plain_exponential_delays() -> None:
    policy = RetryPolicy(
        max_attempts=6, backoff_seconds=0.5, backoff_factor=3, max_backoff_seconds=10, jitter=0
    )
    seeded = random.Random(1).random
    assert [policy.delay_before(attempt, seeded) for attempt in range(2, 7)] == [
        0.5,
        1.5,
        4.5,
        10.0,
        10.0,
    ]


def test_default_jitter_spreads_delays_within_half_to_full_of_the_capped_delay() -> None:
    policy = RetryPolicy(
        max_attempts=10, backoff_seconds=1, backoff_factor=2, max_backoff_seconds=6
    )
    assert policy.jitter == 0.5
    seeded = random.Random(42).random
    for attempt, ceiling in [(2, 1.0), (3, 2.0), (4, 4.0), (5, 6.0), (9, 6.0)]:
        delays = [policy.delay_before(attempt, seeded) for _ in range(200)]
        # Never above the plain delay (max_backoff_seconds stays a hard cap) nor below half.
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (attempt, delays)
        # Many runs failing at once do not retry in lockstep.
        assert len(set(delays)) == len(delays)
        assert min(delays) < ceiling * 0.6 and max(delays) > ceiling * 0.9


def test_full_jitter_and_the_extremes_of_the_random_fraction() -> None:
    full = RetryPolicy(max_attempts=3, backoff_seconds=8, jitter=1)
    assert full.delay_before(2, lambda: 0.0) == 8.0
    assert full.delay_before(2, lambda: 0.999) == pytest.approx(0.008)
    equal = RetryPolicy(max_attempts=3, backoff_seconds=8)
    assert equal.delay_before(2, lambda: 0.0) == 8.0
    assert equal.delay_before(2, lambda: 0.999) == pytest.approx(4.004)


def test_the_default_random_source_is_used_without_an_injected_one() -> None:
    policy = RetryPolicy(max_attempts=3, backoff_seconds=1)
    delays = {policy.delay_before(2) for _ in range(50)}
    assert len(delays) > 1 and all(0.5 <= delay <= 1.0 for delay in delays)


@pytest.mark.parametrize("jitter", [-0.1, 1.5])
def test_jitter_outside_zero_to_one_is_refused(jitter: float) -> None:
    with pytest.raises(ValidationError, match="jitter"):
        RetryPolicy(jitter=jitter)
