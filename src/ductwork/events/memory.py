"""In-process event bus: fan-out to subscribers in this process (embedded mode)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from ductwork.models import Event

SUBSCRIBER_BUFFER = 10_000
"""Events held for a slow subscriber before the oldest are dropped (it can replay them)."""

T = TypeVar("T")


class Subscription(Generic[T]):
    """A bounded buffer for one subscriber; drops the oldest item rather than block publishers."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[T] = asyncio.Queue(SUBSCRIBER_BUFFER)

    def put(self, item: T) -> None:
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)

    async def __aiter__(self) -> AsyncIterator[T]:
        while True:
            yield await self.queue.get()


class InProcessEventBus:
    """`EventBus` for one process."""

    def __init__(self) -> None:
        self._runs: defaultdict[str, set[Subscription[Event]]] = defaultdict(set)
        self._control: set[Subscription[dict[str, str]]] = set()

    async def publish(self, execution_id: str, event: Event) -> None:
        for subscription in self._runs.get(execution_id, ()):
            subscription.put(event)

    async def publish_many(self, execution_id: str, events: Sequence[Event]) -> None:
        for subscription in self._runs.get(execution_id, ()):
            for event in events:
                subscription.put(event)

    @asynccontextmanager
    async def subscribe(self, execution_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        subscription: Subscription[Event] = Subscription()
        self._runs[execution_id].add(subscription)
        try:
            yield aiter(subscription)
        finally:
            subscribers = self._runs.get(execution_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._runs[execution_id]

    async def publish_control(self, message: dict[str, str]) -> None:
        for subscription in self._control:
            subscription.put(message)

    @asynccontextmanager
    async def subscribe_control(self) -> AsyncIterator[AsyncIterator[dict[str, str]]]:
        subscription: Subscription[dict[str, str]] = Subscription()
        self._control.add(subscription)
        try:
            yield aiter(subscription)
        finally:
            self._control.discard(subscription)

    def subscriber_count(self, execution_id: str) -> int:
        """How many live subscribers a run has (for tests and metrics)."""
        return len(self._runs.get(execution_id, ()))

    async def close(self) -> None:
        self._runs.clear()
        self._control.clear()
