"""The `Cache` port, used by the LLM node for `llm:cache:{sha256}` entries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class Cache(Protocol):
    """A string-keyed byte cache with TTLs and single-flight computation."""

    async def get(self, key: str) -> bytes | None:
        """The cached value, or None on a miss (or when the backend is unreachable)."""

    async def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store a value that expires after ttl_seconds."""

    async def get_or_compute(
        self, key: str, compute: Callable[[], Awaitable[bytes]], ttl_seconds: int
    ) -> tuple[bytes, bool]:
        """The cached value, or compute it once for all concurrent callers.

        Returns (value, was_cached). Identical concurrent calls, in this process
        or (for shared backends) in others, share one computation.
        """

    async def close(self) -> None:
        """Release connections."""
