"""In-process queue: runs are advanced by tasks of this process (embedded mode)."""

from __future__ import annotations

import asyncio
import logging

from ductwork.queue.base import RunHandler

log = logging.getLogger("ductwork.queue")


class InProcessQueue:
    """`Queue` backed by an asyncio.Queue, consumed by a bounded number of tasks.

    Nothing is lost if the process dies: the store still holds the run as
    queued or running, and the sweep re-enqueues it at the next start.
    """

    local = True
    """Ids enqueued here are advanced by this process (`Queue.local`)."""

    def __init__(self, concurrency: int = 64) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._pending: set[str] = set()
        self._concurrency = concurrency
        self._consumers: list[asyncio.Task[None]] = []

    async def enqueue(self, execution_id: str) -> None:
        """Queue the run for a consumer of this process (once while it waits)."""
        await self.enqueue_unless_pending(execution_id)

    async def enqueue_unless_pending(self, execution_id: str) -> bool:
        """Queue the run unless it already waits; True when it was queued.

        In-process nothing is lost between enqueue and take, so the message
        already waiting serves an explicit enqueue as well as a sweep's.
        """
        if execution_id in self._pending:
            return False
        self._pending.add(execution_id)
        self._queue.put_nowait(execution_id)
        return True

    async def start_consuming(self, handler: RunHandler) -> None:
        loop = asyncio.get_running_loop()
        self._consumers = [
            loop.create_task(self._consume(handler)) for _ in range(self._concurrency)
        ]

    async def _consume(self, handler: RunHandler) -> None:
        while True:
            execution_id = await self._queue.get()
            self._pending.discard(execution_id)
            try:
                await handler(execution_id)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The run stays in the store; the sweep picks it up again.
                log.exception("advancing run %s failed", execution_id)

    def pending(self) -> int:
        """Enqueued ids not yet taken."""
        return self._queue.qsize()

    async def close(self) -> None:
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers = []
