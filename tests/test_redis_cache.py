"""RedisCache against the real Redis: TTLs, single flight in and across processes, degraded mode."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
import time
import uuid
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ductwork.cache import redis as redis_cache_module
from ductwork.cache.redis import RedisCache
from tests.support.polling import eventually

pytestmark = pytest.mark.redis

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[RedisCache]:
    cache = RedisCache(redis_url)
    yield cache
    await cache.close()


class Counter:
    """A compute function that counts its calls and can be held open or made to fail."""

    def __init__(self, value: bytes = b"value", *, seconds: float = 0.0) -> None:
        self.value = value
        self.seconds = seconds
        self.calls = 0
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.hold = False
        self.error: Exception | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        self.started.set()
        if self.seconds:
            await asyncio.sleep(self.seconds)
        if self.hold:
            await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def test_value_is_stored_under_the_seed_key_with_a_ttl(
    cache: RedisCache, raw_redis: aioredis.Redis
) -> None:
    key = f"llm:cache:{hashlib.sha256(uuid.uuid4().bytes).hexdigest()}"
    try:
        compute = Counter(b'{"content": "hi"}')
        assert await cache.get_or_compute(key, compute, 60) == (b'{"content": "hi"}', False)
        assert await raw_redis.get(key) == b'{"content": "hi"}'
        assert 0 < await raw_redis.ttl(key) <= 60
        assert not await raw_redis.exists(f"{key}:lock")

        assert await cache.get_or_compute(key, compute, 60) == (b'{"content": "hi"}', True)
        assert compute.calls == 1
        assert await cache.get(key) == b'{"content": "hi"}'
    finally:
        await raw_redis.delete(key)


async def test_set_and_get(cache: RedisCache, raw_redis: aioredis.Redis, key_prefix: str) -> None:
    key = f"{key_prefix}k"
    assert await cache.get(key) is None
    await cache.set(key, b"v", 30)
    assert await cache.get(key) == b"v"
    assert 0 < await raw_redis.ttl(key) <= 30
    await cache.set(key, b"v", 0)
    assert await cache.get(key) is None


async def test_fifty_concurrent_identical_requests_compute_once(
    cache: RedisCache, key_prefix: str
) -> None:
    compute = Counter(seconds=0.05)
    results = await asyncio.gather(
        *(cache.get_or_compute(f"{key_prefix}k", compute, 60) for _ in range(50))
    )
    assert compute.calls == 1
    assert {value for value, _ in results} == {b"value"}
    assert [cached for _, cached in results].count(False) == 1


async def test_single_flight_across_two_os_processes(
    redis_url: str, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key, counter, ready = f"{key_prefix}k", f"{key_prefix}computes", f"{key_prefix}ready"
    command = [sys.executable, "-m", "tests.support.redis_cache_worker"]
    args = [redis_url, key, counter, ready, "2", "10"]
    workers = [
        await asyncio.create_subprocess_exec(
            *command, *args, cwd=REPO_ROOT, stdout=PIPE, stderr=PIPE
        )
        for _ in range(2)
    ]
    results = []
    try:
        for worker in workers:
            out, err = await asyncio.wait_for(worker.communicate(), 30)
            assert worker.returncode == 0, err.decode()
            results.extend(json.loads(out))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                await worker.wait()

    assert int(await raw_redis.get(counter) or 0) == 1
    assert len(results) == 20
    assert {value for value, _ in results} == {"computed"}
    assert [cached for _, cached in results].count(False) == 1


async def test_waiter_computes_after_a_dead_holders_lock_expires(
    cache: RedisCache, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}k"
    # A "process" that took the lock and died: nobody releases or renews it.
    started = time.monotonic()  # before the lock is taken, so the lower bound holds
    await raw_redis.set(f"{key}:lock", "dead-holder", px=300)
    compute = Counter()
    assert await cache.get_or_compute(key, compute, 60) == (b"value", False)
    assert time.monotonic() - started >= 0.25, "computed while the dead holder's lock lived"
    assert compute.calls == 1
    assert await raw_redis.get(key) == b"value"


async def test_failing_compute_propagates_and_caches_nothing(
    cache: RedisCache, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}k"
    compute = Counter(seconds=0.05)
    compute.error = RuntimeError("upstream down")
    results = await asyncio.gather(
        *(cache.get_or_compute(key, compute, 60) for _ in range(10)), return_exceptions=True
    )
    assert compute.calls == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "upstream down" for r in results)
    assert await raw_redis.get(key) is None
    assert not await raw_redis.exists(f"{key}:lock")

    compute.error = None
    assert await cache.get_or_compute(key, compute, 60) == (b"value", False)
    assert compute.calls == 2


async def test_other_process_waits_for_the_holder_and_reads_its_value(
    redis_url: str, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}k"
    first, second = RedisCache(redis_url), RedisCache(redis_url)
    try:
        holder = Counter(b"from holder")
        holder.hold = True
        holding = asyncio.create_task(first.get_or_compute(key, holder, 60))
        await asyncio.wait_for(holder.started.wait(), 15)

        waiter = Counter(b"from waiter")
        waiting = asyncio.gather(*(second.get_or_compute(key, waiter, 60) for _ in range(5)))

        async def second_is_waiting() -> bool:
            subscribed = dict(await raw_redis.pubsub_numsub(f"{key}:done"))
            return subscribed.get(f"{key}:done".encode(), 0) >= 1

        await eventually(second_is_waiting)
        # Five callers in one process share one wait: one subscription, not five.
        assert await raw_redis.pubsub_numsub(f"{key}:done") == [(f"{key}:done".encode(), 1)]
        holder.release.set()
        assert await holding == (b"from holder", False)
        assert await waiting == [(b"from holder", True)] * 5
        assert waiter.calls == 0
    finally:
        await first.close()
        await second.close()


async def test_other_process_computes_when_the_holder_fails(
    redis_url: str, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}k"
    first, second = RedisCache(redis_url), RedisCache(redis_url)
    try:
        holder = Counter()
        holder.hold = True
        holder.error = RuntimeError("boom")
        holding = asyncio.create_task(first.get_or_compute(key, holder, 60))
        await asyncio.wait_for(holder.started.wait(), 15)

        waiter = Counter(b"from waiter")
        waiting = asyncio.create_task(second.get_or_compute(key, waiter, 60))
        await eventually(lambda: raw_redis.exists(f"{key}:lock"))
        holder.release.set()
        with pytest.raises(RuntimeError, match="boom"):
            await holding
        assert await waiting == (b"from waiter", False)
        assert waiter.calls == 1
        assert await raw_redis.get(key) == b"from waiter"
    finally:
        await first.close()
        await second.close()


async def test_holder_renews_its_lock_while_computing(
    redis_url: str, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}k"
    # Renewed every third of a TTL: a loaded machine (the suite runs in parallel) must
    # stall the holder for 1.3 s before the lock lapses, so the TTL is no shorter than this.
    lock_ttl = 2.0
    first = RedisCache(redis_url, lock_ttl_seconds=lock_ttl)
    second = RedisCache(redis_url, lock_ttl_seconds=lock_ttl)
    try:
        holder = Counter(b"slow")
        holder.hold = True
        holding = asyncio.create_task(first.get_or_compute(key, holder, 60))
        await asyncio.wait_for(holder.started.wait(), 15)
        taken = await raw_redis.get(f"{key}:lock")
        waiter = Counter(b"duplicate")
        waiting = asyncio.create_task(second.get_or_compute(key, waiter, 60))
        # The computation outlives the lock's TTL: only renewals keep it.
        await asyncio.sleep(1.5 * lock_ttl)
        assert await raw_redis.get(f"{key}:lock") == taken, "the holder's lock lapsed"
        holder.release.set()
        assert await waiting == (b"slow", True)
        assert await holding == (b"slow", False)
        assert waiter.calls == 0
    finally:
        await first.close()
        await second.close()


async def test_zero_ttl_stores_nothing_but_still_shares_the_computation(
    cache: RedisCache, raw_redis: aioredis.Redis, key_prefix: str
) -> None:
    key = f"{key_prefix}k"
    compute = Counter(seconds=0.05)
    results = await asyncio.gather(*(cache.get_or_compute(key, compute, 0) for _ in range(10)))
    assert compute.calls == 1
    assert [cached for _, cached in results].count(False) == 1
    assert not await raw_redis.exists(key)
    assert not await raw_redis.exists(f"{key}:lock")


async def test_unreachable_redis_degrades_to_computing(
    closed_redis_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A cooldown that cannot run out mid-test, however slow the machine.
    monkeypatch.setattr(redis_cache_module, "UNAVAILABLE_COOLDOWN_SECONDS", 3600.0)
    cache = RedisCache(closed_redis_url)
    # Count the commands that try Redis: after the first failure, none should.
    attempts: list[object] = []
    execute_command = cache._redis.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        attempts.append(args[0])
        return await execute_command(*args, **options)

    cache._redis.execute_command = counted  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.WARNING, logger="ductwork.cache.redis"):
            assert await cache.get("llm:cache:x") is None
            await cache.set("llm:cache:x", b"v", 60)
            compute = Counter(seconds=0.05)
            results = await asyncio.gather(
                *(cache.get_or_compute("llm:cache:x", compute, 60) for _ in range(10))
            )
        assert attempts == ["GET"], "a dead Redis is skipped, not timed out on every call"
        assert compute.calls == 1
        assert sorted(results, key=lambda r: r[1]) == [(b"value", False)] + [(b"value", True)] * 9
        assert await cache.get_or_compute("llm:cache:y", Counter(b"y"), 60) == (b"y", False)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # rate-limited: one line, not one per call
        assert "Redis cache GET failed" in warnings[0].getMessage()
    finally:
        await cache.close()
