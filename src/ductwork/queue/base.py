"""The `Queue` port: says "advance run X"; the store holds everything else."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

RunHandler = Callable[[str], Awaitable[None]]


class Queue(Protocol):
    """Delivers execution ids to whoever advances runs (in-process or workers)."""

    local: bool
    """Whether what is enqueued here is advanced by this very process when it consumes
    (the in-process queue): a run it just created may then be handed to its executor
    as well (`Executor.expect`)."""

    async def enqueue(self, execution_id: str) -> None:
        """Ask some worker to advance this run (at-least-once); always goes through.

        For a new run, a retry, a cancelled parked run: someone just changed it.
        """

    async def enqueue_unless_pending(self, execution_id: str) -> bool:
        """The sweep's enqueue: skipped while a message for this run waits to be taken.

        Returns whether a message was added. A run found due again and again
        (a backlog, a wake-up nobody took yet) gets one message, not one per
        sweep; once a worker takes the message, the next due time gets a new one.
        """

    async def start_consuming(self, handler: RunHandler) -> None:
        """Start feeding enqueued ids to handler (returns at once)."""

    async def close(self) -> None:
        """Stop consuming and release connections."""
