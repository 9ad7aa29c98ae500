"""The Redis `Cache` adapter (scale-out mode): shared, TTL'd, single-flight across processes.

Keys are used as given (the ai-processor node passes `llm:cache:{sha256}`, the
SEED.md contract), stored with `SET ... EX ttl` so `redis-cli TTL` shows it.

Single flight across processes. On a miss, the computing process is whoever
takes `{key}:lock` with `SET NX PX lock_ttl`; it renews the lock while it
computes, then in one Lua script stores the value, deletes the lock if it still
owns it and PUBLISHes the outcome on `{key}:done` (the value itself, so
waiters get it without another read and even when the TTL stores nothing).
The others subscribe to `{key}:done` (on the process's one shared pub/sub
connection), poll `MGET key lock` every `wait_poll_seconds` as a fallback,
and take the lock themselves if it disappears without a value (the holder
failed or died). Within a process, callers of the same key share one
in-flight task, so a process never waits on Redis twice for one key.

A cache must never fail a run: when Redis is unreachable or erroring, reads
are misses, writes are skipped, and `get_or_compute` just computes (still
single-flight within the process), with a warning at most every 30 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ductwork.events.redis import (
    REDIS_ERRORS,
    RateLimitedWarning,
    SharedSubscriber,
    redis_pool,
    stop_task,
)

log = logging.getLogger(__name__)

UNAVAILABLE_COOLDOWN_SECONDS = 1.0
"""After a connection failure, skip Redis for this long instead of timing out on every call."""

_OK = b"1"
_FAILED = b"0"

# KEYS: value key, lock key. ARGV: lock token, ok ("1"/"0"), value, ttl seconds, channel.
# One round trip, and waiters never see the lock gone before the value is there.
_FINISH_SCRIPT = """
local ok = ARGV[2] == '1'
if ok and tonumber(ARGV[4]) > 0 then
  redis.call('SET', KEYS[1], ARGV[3], 'EX', ARGV[4])
end
local released = 0
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  released = 1
end
if ok then
  redis.call('PUBLISH', ARGV[5], '1' .. ARGV[3])
else
  redis.call('PUBLISH', ARGV[5], '0')
end
return released
"""

# KEYS: lock key. ARGV: lock token, lock ttl in ms. Extends the lock only if still ours.
_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""


def _as_bytes(value: bytes | str | None) -> bytes | None:
    # The pool does not decode responses, so values come back as bytes; typing allows str.
    return value.encode() if isinstance(value, str) else value


class RedisCache:
    """A `Cache` in Redis, shared by every process pointing at the same server.

    Same semantics as `MemoryCache`: `was_cached` is False only for the one
    caller whose call computed the value; a failed computation propagates to
    this process's waiters and caches nothing (waiting processes then find
    the lock released and one of them computes); a TTL of 0 (or less) stores
    nothing.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 50,
        lock_ttl_seconds: float = 120,
        wait_poll_seconds: float = 0.05,
    ) -> None:
        """Connect lazily to the Redis at `url` (`redis://host:port/db`).

        `lock_ttl_seconds` is how long a computing process's lock outlives its
        last renewal, i.e. how soon waiters notice that it died; it is also how
        long a waiter waits before re-checking from scratch.
        """
        if lock_ttl_seconds <= 0 or wait_poll_seconds <= 0:
            raise ValueError("lock_ttl_seconds and wait_poll_seconds must be positive")
        self._url = url
        self._pool = redis_pool(url, max_connections=max_connections, client_name="ductwork-cache")
        self._redis = Redis(connection_pool=self._pool)
        self._finish_script = self._redis.register_script(_FINISH_SCRIPT)
        self._renew_script = self._redis.register_script(_RENEW_SCRIPT)
        self._lock_ttl = lock_ttl_seconds
        self._lock_ttl_ms = max(1, int(lock_ttl_seconds * 1000))
        self._poll = wait_poll_seconds
        self._inflight: dict[str, asyncio.Task[tuple[bytes, bool]]] = {}
        self._subscriber: SharedSubscriber | None = None
        self._unavailable_until = 0.0
        self._closed = False
        self._warn = RateLimitedWarning(log)

    # Degraded mode ----------------------------------------------------------------
    def _usable(self) -> bool:
        return time.monotonic() >= self._unavailable_until

    def _failed(self, operation: str, exc: BaseException) -> None:
        if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
            self._unavailable_until = time.monotonic() + UNAVAILABLE_COOLDOWN_SECONDS
        self._warn(
            "Redis cache %s failed (%s: %s); treating it as a miss",
            operation,
            type(exc).__name__,
            exc,
        )

    # Plain operations -------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        """The cached value, or None on a miss or when Redis is unreachable."""
        if not self._usable():
            return None
        try:
            return _as_bytes(await self._redis.get(key))
        except REDIS_ERRORS as exc:
            self._failed("GET", exc)
            return None

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value that expires after ttl_seconds (<= 0 removes the key)."""
        if not self._usable():
            return
        try:
            if ttl_seconds <= 0:
                await self._redis.delete(key)
            else:
                await self._redis.set(key, value, ex=ttl_seconds)
        except REDIS_ERRORS as exc:
            self._failed("SET", exc)

    # Single flight ----------------------------------------------------------------
    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> tuple[bytes, bool]:
        """The cached value, or compute it once for every concurrent caller in every process.

        Returns (value, was_cached): was_cached is False only for the caller
        whose call ran `compute`; callers that joined a computation in flight,
        here or in another process, count as cached.
        """
        task = self._inflight.get(key)
        started_here = task is None
        if task is None:
            task = asyncio.get_running_loop().create_task(self._flight(key, compute, ttl_seconds))
            self._inflight[key] = task
        # shield: a cancelled caller must not cancel the flight the others await.
        value, computed = await asyncio.shield(task)
        return value, not (started_here and computed)

    async def _flight(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> tuple[bytes, bool]:
        """(value, computed here) for one key, shared by this process's callers."""
        try:
            return await self._resolve(key, compute, ttl_seconds)
        finally:
            if self._inflight.get(key) is asyncio.current_task():
                del self._inflight[key]

    async def _resolve(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> tuple[bytes, bool]:
        lock_key = f"{key}:lock"
        while True:
            if self._closed:
                raise RuntimeError("RedisCache is closed")
            if not self._usable():
                return await compute(), True
            token = secrets.token_hex(16)
            try:
                value = _as_bytes(await self._redis.get(key))
                if value is not None:
                    return value, False
                acquired = await self._redis.set(lock_key, token, nx=True, px=self._lock_ttl_ms)
                if not acquired:
                    value = await self._wait_for_holder(key, lock_key)
                    if value is not None:
                        return value, False
                    # The lock went away without a value (the holder failed or
                    # died, or stored nothing): try to take it ourselves.
                    continue
            except REDIS_ERRORS as exc:
                self._failed("lookup", exc)
                return await compute(), True
            return await self._compute_holding_lock(
                key, lock_key, token, compute, ttl_seconds
            ), True

    async def _compute_holding_lock(
        self,
        key: str,
        lock_key: str,
        token: str,
        compute: Callable[[], Awaitable[bytes]],
        ttl_seconds: int,
    ) -> bytes:
        stop = asyncio.Event()
        renewer = asyncio.get_running_loop().create_task(self._renew(lock_key, token, stop))
        try:
            value = await compute()
        except BaseException:
            await self._stop(renewer, stop)
            await self._finish(key, lock_key, token, None, ttl_seconds)
            raise
        await self._stop(renewer, stop)
        await self._finish(key, lock_key, token, value, ttl_seconds)
        return value

    @staticmethod
    async def _stop(renewer: asyncio.Task[None], stop: asyncio.Event) -> None:
        # The event as well as cancel(): redis-py can swallow a cancellation that races
        # a command (`stop_task` cancels again until the renewer ends).
        stop.set()
        await stop_task(renewer)

    async def _renew(self, lock_key: str, token: str, stop: asyncio.Event) -> None:
        """Keep the lock while computing, so only a dead holder's lock expires."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._lock_ttl / 3):
                    await stop.wait()
            if stop.is_set():
                return
            try:
                if not await self._renew_script(keys=[lock_key], args=[token, self._lock_ttl_ms]):
                    return  # Lost it (expired during an outage): nothing left to renew.
            except REDIS_ERRORS as exc:
                self._failed("lock renewal", exc)

    async def _finish(
        self, key: str, lock_key: str, token: str, value: bytes | None, ttl_seconds: int
    ) -> None:
        """Store the value (if any), release the lock if still ours, tell the waiters."""
        ok = value is not None
        try:
            await self._finish_script(
                keys=[key, lock_key],
                args=[token, _OK if ok else _FAILED, value or b"", ttl_seconds, f"{key}:done"],
            )
        except REDIS_ERRORS as exc:
            self._failed("store", exc)

    def _notifications(self) -> SharedSubscriber:
        if self._subscriber is None:
            self._subscriber = SharedSubscriber(
                self._url, client_name="ductwork-cache", ack_timeout_seconds=1.0
            )
        return self._subscriber

    async def _wait_for_holder(self, key: str, lock_key: str) -> bytes | None:
        """The value another process computes, or None once its lock is gone without one.

        Raises a Redis error when Redis fails meanwhile.
        """
        loop = asyncio.get_running_loop()
        outcome: asyncio.Future[bytes | None] = loop.create_future()

        def notified(payload: bytes) -> None:
            if not outcome.done():
                outcome.set_result(payload[1:] if payload[:1] == _OK else None)

        deadline = loop.time() + self._lock_ttl
        # Subscribed (and acknowledged) before the first read, so the holder's
        # notification cannot fall between our read and the subscription.
        async with self._notifications().listen(f"{key}:done", notified):
            while not self._closed:
                value, holder = await self._redis.mget(key, lock_key)
                if value is not None:
                    return _as_bytes(value)
                if outcome.done():
                    return outcome.result()
                if holder is None:
                    return None
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return None
                await asyncio.wait([outcome], timeout=min(self._poll, remaining))
        return None  # closed

    async def close(self) -> None:
        """Cancel computations in flight and close the connections."""
        self._closed = True
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        if self._subscriber is not None:
            await self._subscriber.close()
            self._subscriber = None
        await self._redis.aclose()
        await self._pool.aclose()
