"""The in-process `Cache` adapter: TTL'd, LRU-bounded, single-flight.

Used in the embedded deployment (one process, no Redis). Entries expire on a
monotonic clock, so wall-clock jumps neither expire nor resurrect them. When
more than `max_entries` are stored, the least recently used entry goes first.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

DEFAULT_MAX_ENTRIES = 10_000


class MemoryCache:
    """A `Cache` living in this process's memory.

    `get_or_compute` runs one computation per key at a time: callers arriving
    while it is in flight await the same result (or the same exception). The
    computation runs in its own task, so cancelling any one caller, including
    the one that started it, does not cancel it for the others.

    A TTL of 0 (or less) stores nothing; concurrent callers still share the
    computation.
    """

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build an empty cache; `clock` returns seconds and must never go backwards."""
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._max_entries = max_entries
        self._clock = clock
        # key -> (expires_at, value); insertion order doubles as recency order.
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._inflight: dict[str, asyncio.Task[bytes]] = {}

    @property
    def size(self) -> int:
        """How many entries are stored, counting expired ones not yet evicted."""
        return len(self._entries)

    def _lookup(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    def _store(self, key: str, value: bytes, ttl_seconds: float) -> None:
        if ttl_seconds <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (self._clock() + ttl_seconds, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None when missing or expired."""
        return self._lookup(key)

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value that expires after ttl_seconds (<= 0 removes the key)."""
        self._store(key, value, ttl_seconds)

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> tuple[bytes, bool]:
        """The cached value, or compute it once for every concurrent caller.

        Returns (value, was_cached): was_cached is False only for the caller
        whose call started the computation; callers that joined it in flight
        did not cause an upstream call, so they count as cached. A failed
        computation is not cached: every waiter gets its exception.
        """
        value = self._lookup(key)
        if value is not None:
            return value, True
        task = self._inflight.get(key)
        started_here = task is None
        if task is None:
            task = asyncio.create_task(self._compute(key, compute, ttl_seconds))
            self._inflight[key] = task
        # shield: a cancelled caller must not cancel the task the others await.
        return await asyncio.shield(task), not started_here

    async def _compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> bytes:
        try:
            value = await compute()
            self._store(key, value, ttl_seconds)
            return value
        finally:
            # Storing and leaving the in-flight table happen in one step (no
            # await between), so no caller can miss both and compute twice.
            self._inflight.pop(key, None)

    async def close(self) -> None:
        """Cancel computations in flight and drop every entry."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        self._entries.clear()
