"""The `Queue` port: says "advance run X"; the store holds everything else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

RunHandler = Callable[[str], Awaitable[None]]


class Queue(Protocol):
    """Delivers execution ids to whoever advances runs (in-process or workers)."""

    async def enqueue(self, execution_id: str) -> None:
        """Ask some worker to advance this run (at-least-once)."""

    async def start_consuming(self, handler: RunHandler) -> None:
        """Start feeding enqueued ids to handler (returns at once)."""

    async def close(self) -> None:
        """Stop consuming and release connections."""
