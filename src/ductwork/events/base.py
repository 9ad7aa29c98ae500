"""The `EventBus` port: fan-out of run events to live subscribers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from ductwork.models import Event


class EventBus(Protocol):
    """Publish run events; subscribers on any process receive those published after they subscribed."""

    async def publish(self, execution_id: str, event: Event) -> None:
        """Deliver an event to current subscribers of the run (best effort)."""

    def subscribe(self, execution_id: str) -> AsyncIterator[Event]:
        """Events of one run, from now on, until the iterator is closed."""

    async def publish_control(self, message: dict[str, str]) -> None:
        """Broadcast a control message (e.g. cancel) to every process."""

    def subscribe_control(self) -> AsyncIterator[dict[str, str]]:
        """Control messages from any process."""

    async def close(self) -> None:
        """Release connections."""
