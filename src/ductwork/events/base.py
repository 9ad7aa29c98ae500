"""The `EventBus` port: fan-out of run events to live subscribers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from ductwork.models import Event


class EventBus(Protocol):
    """Publish run events; subscribers on any process receive those published after they subscribed.

    `subscribe` is a context manager so that the subscription is live once it is
    entered: `async with bus.subscribe(run_id) as events: async for event in events: ...`.
    """

    async def publish(self, execution_id: str, event: Event) -> None:
        """Deliver an event to current subscribers of the run (best effort)."""

    async def publish_many(self, execution_id: str, events: Sequence[Event]) -> None:
        """Deliver several events of one run, in order, in as few messages as possible."""

    def subscribe(self, execution_id: str) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """Events of one run, published after entering, until exit."""

    async def publish_control(self, message: dict[str, str]) -> None:
        """Broadcast a control message (e.g. cancel) to every process."""

    def subscribe_control(self) -> AbstractAsyncContextManager[AsyncIterator[dict[str, str]]]:
        """Control messages from any process, published after entering."""

    async def close(self) -> None:
        """Release connections."""
