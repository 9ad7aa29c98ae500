"""Follow a run live: its stored events first, then the bus, without gaps or duplicates.

Every transport that shows a run as it happens (the WebSocket and SSE routes,
`ductwork run`, a test in another process) reads it through `stream()` or
`follow()`, which only use the store and the event bus, so they work the same
whether the run executes in this process or on a worker somewhere else.

How a gap-free, duplicate-free stream is put together:

1. Subscribe to the bus *first*, so nothing published from now on is missed.
2. Read the run (state and stored events) from the store: the snapshot. Yield
   its events with seq > `after_seq`.
3. Yield live events from the bus. A stored event whose seq was already
   yielded is dropped (the replay and the bus overlap). An event that skips
   seqs means the bus lost some (it is best effort, and a slow subscriber's
   buffer drops its oldest events): the missing ones are read from the store.
4. When the bus is quiet for a while, re-read the store anyway, so a lost
   `run_finished` cannot leave a stream hanging forever.
5. Stop after `run_finished`, or right after the replay when the run had
   already finished.

`token` events are ephemeral (published, never stored); their `seq` is the
last stored seq at the moment the token was produced. They are never deduped;
a token whose seq is ahead of what was yielded is held back until the stored
events up to its seq have been yielded, so a node's tokens never arrive before
its `node_started`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterable
from typing import Any

import orjson

from ductwork.models import Event, Run
from ductwork.security.resume_links import LINK_FIELD, links_visible, without_link
from ductwork.service import Ductwork, NotFound

log = logging.getLogger("ductwork.live")

EPHEMERAL_TYPES = frozenset({"token"})
"""Event types that are published live but never stored (not deduped by seq)."""

RECHECK_SECONDS = 2.0
"""Re-read the store after this long without a stored event from the bus."""

MAX_RECHECK_SECONDS = 10.0
"""Quiet runs (parked on a long delay) are re-read less often, up to this interval."""

MAX_INBOX = 10_000
"""Live events buffered for a subscriber that does not keep up; the oldest are dropped."""

MAX_HELD_TOKENS = 10_000
"""Tokens held back waiting for their stored predecessor; the oldest are dropped beyond this."""


class _Inbox:
    """Live events moved off the bus by one task, waited for with a timeout.

    One long-lived task per subscriber reads the bus; the stream takes whatever
    has arrived in one batch. (A task per read, or `asyncio.wait_for` on the
    bus iterator, costs several times more per event, and cancelling a pending
    read on timeout would finish the bus's async generator for good.)
    """

    def __init__(self, source: AsyncIterator[Event], limit: int = MAX_INBOX) -> None:
        self.items: deque[Event] = deque()
        self.closed = False
        self._limit = limit
        self._loop = asyncio.get_running_loop()
        self._waiter: asyncio.Future[None] | None = None
        self._task = self._loop.create_task(self._pump(source))

    def wake(self) -> None:
        """End a pending `wait` early."""
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _pump(self, source: AsyncIterator[Event]) -> None:
        try:
            async for item in source:
                self.items.append(item)
                if len(self.items) > self._limit:
                    # A stalled reader loses the oldest; stored ones are re-read as a gap.
                    self.items.popleft()
                self.wake()
        except Exception:
            log.warning("live event subscription failed; following from the store", exc_info=True)
        finally:
            self.closed = True
            self.wake()

    async def wait(self, timeout: float) -> None:  # noqa: ASYNC109 - bounded wait, not a scope
        """Return when items are there, the bus ended, or `timeout` seconds passed."""
        if self.items or self.closed:
            return
        # A bare future and timer: this runs once per event per subscriber, and
        # asyncio.Event plus asyncio.timeout cost several times more.
        waiter = self._waiter = self._loop.create_future()
        timer = self._loop.call_later(timeout, self.wake)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def take(self) -> list[Event]:
        items = list(self.items)
        self.items.clear()
        return items

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class RunStream:
    """One run's events after a given seq: a replay from the store, then the live tail.

    Made by `stream()`. `run` is the snapshot read right after subscribing
    (the run's state; its events are the ones replayed). It is let go once the
    live tail begins, so that thousands of long-lived subscribers do not each
    hold a copy of the run: read it before iterating. Iterate once.
    """

    def __init__(
        self,
        app: Ductwork,
        run: Run,
        after_seq: int,
        live: AsyncIterator[Event],
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        max_recheck_seconds: float = MAX_RECHECK_SECONDS,
    ) -> None:
        self._snapshot: Run | None = run
        self.execution_id: str = run.execution_id
        self.last_seq = after_seq
        """The highest stored seq yielded so far (what a client resumes from)."""
        self.finished = False
        """True once `run_finished` was yielded or the run was found finished."""
        self._app = app
        self._inbox = _Inbox(live)
        self._held: deque[Event] = deque()
        self._recheck = recheck_seconds
        self._max_recheck = max(max_recheck_seconds, recheck_seconds)
        self._rechecking: asyncio.Task[list[Event]] | None = None

    @property
    def run(self) -> Run:
        """The run as it stood when the stream was opened."""
        if self._snapshot is None:
            raise RuntimeError("the snapshot is released once the live tail begins")
        return self._snapshot

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events_only()

    async def _events_only(self) -> AsyncIterator[Event]:
        async for item in self.items():
            if item is not None:
                yield item

    async def items(self, heartbeat: float | None = None) -> AsyncIterator[Event | None]:
        """Events in order; with `heartbeat`, also None after that many idle seconds.

        The None lets a transport send a keep-alive without a timer of its own.
        """
        # An earlier run_finished in the history (the run was retried since) does not stop
        # the replay: the snapshot's status says whether the run is over.
        snapshot = self.run
        replay = self._take_stored(
            (e for e in snapshot.events if e.seq > self.last_seq), live=False
        )
        already_finished = snapshot.status.finished
        del snapshot
        self._snapshot = None
        for event in replay:
            yield event
        del replay
        if already_finished:
            self.finished = True
            return
        loop = asyncio.get_running_loop()
        clock = loop.time
        interval = self._recheck
        recheck_at = last_yield = clock()
        recheck_at += interval
        inbox = self._inbox
        while True:
            if not inbox.items and not self._recheck_done():
                now = clock()
                wait = recheck_at - now
                if heartbeat is not None:
                    wait = min(wait, last_yield + heartbeat - now)
                if inbox.closed:
                    # The bus is gone (closing, or broken): carry on from the store alone.
                    await asyncio.sleep(max(wait, 0.0))
                else:
                    await inbox.wait(max(wait, 0.0))
            batch = inbox.take()
            out: list[Event] = []
            rechecked = self._recheck_result()
            if rechecked is not None:
                out.extend(rechecked)
                interval = self._recheck if rechecked else min(interval * 2, self._max_recheck)
                recheck_at = clock() + interval
            if batch:
                for event in batch:
                    if event.type in EPHEMERAL_TYPES:
                        out.extend(self._token(event))
                    elif event.seq <= self.last_seq:
                        continue
                    elif event.seq == self.last_seq + 1:
                        out.extend(self._take_stored([event]))
                    else:
                        # The bus skipped some seqs: fetch them (this one is stored too).
                        fresh = await self._app.store.list_events(self.execution_id, self.last_seq)
                        out.extend(self._take_stored([*fresh, event]))
                if any(item.type not in EPHEMERAL_TYPES for item in out):
                    interval = self._recheck
                    recheck_at = clock() + interval
            elif not out:
                now = clock()
                if heartbeat is not None and now >= last_yield + heartbeat:
                    last_yield = now
                    yield None
                if now >= recheck_at and self._rechecking is None:
                    # In the background: a slow store must not hold up live events.
                    self._rechecking = loop.create_task(
                        self._app.store.list_events(self.execution_id, self.last_seq)
                    )
                    self._rechecking.add_done_callback(lambda _: inbox.wake())
                    recheck_at = now + interval
                continue
            for item in out:
                yield item
                if item.type == "run_finished":
                    self.finished = True
                    return
            if out:
                last_yield = clock()

    def _recheck_done(self) -> bool:
        return self._rechecking is not None and self._rechecking.done()

    def _recheck_result(self) -> list[Event] | None:
        """Stored events a finished background re-read found (None: no re-read ended)."""
        task = self._rechecking
        if task is None or not task.done():
            return None
        self._rechecking = None
        try:
            fresh = task.result()
        except Exception:
            log.warning("re-reading run %s from the store failed", self.execution_id, exc_info=True)
            return []
        # Every way a run ends (including a queued run cancelled in the store, or an
        # invalid definition) stores a run_finished event, so the events are enough.
        return self._take_stored(fresh)

    def _token(self, event: Event) -> list[Event]:
        if event.seq <= self.last_seq and not self._held:
            return [event]
        self._held.append(event)
        if len(self._held) > MAX_HELD_TOKENS:
            self._held.popleft()
        return self._release_held()

    def _release_held(self) -> list[Event]:
        out = []
        while self._held and self._held[0].seq <= self.last_seq:
            out.append(self._held.popleft())
        return out

    def _take_stored(self, events: Iterable[Event], *, live: bool = True) -> list[Event]:
        """Stored events not yet yielded, in seq order, each followed by the tokens it frees.

        In the live tail nothing after a `run_finished` is taken: the stream ends there.
        """
        out: list[Event] = []
        for event in sorted(events, key=lambda e: e.seq):
            if event.seq <= self.last_seq or event.type in EPHEMERAL_TYPES:
                continue
            self.last_seq = event.seq
            out.append(event)
            out.extend(self._release_held())
            if live and event.type == "run_finished":
                break
        return out

    async def aclose(self) -> None:
        """Stop reading the bus (the subscription itself ends with `stream()`)."""
        if self._rechecking is not None:
            self._rechecking.cancel()
        await self._inbox.aclose()


@contextlib.asynccontextmanager
async def stream(
    app: Ductwork,
    execution_id: str,
    after_seq: int = 0,
    *,
    recheck_seconds: float = RECHECK_SECONDS,
    paged: bool = False,
) -> AsyncIterator[RunStream]:
    """Subscribe to a run and read its snapshot; raises `NotFound` for an unknown id.

        async with live.stream(app, execution_id, after_seq=last_seen) as run_stream:
            show(run_stream.run)
            async for event in run_stream:
                ...

    With `paged`, the snapshot is read without the run's events (a client that pages
    them, `GET .../events/page`, up to the snapshot's `last_seq`) and a first
    connection (`after_seq` 0) starts after that seq: a run with 10,000 events is not
    read, sent and replayed whole. A reconnection still gets the events it missed.
    Leaving the block ends the bus subscription, even mid-stream.
    """
    async with app.bus.subscribe(execution_id) as live_events:
        run = await app.store.get_run(execution_id, with_events=not paged)
        if run is None:
            raise NotFound("execution", execution_id)
        if paged:
            if after_seq <= 0:
                after_seq = run.last_seq
            elif after_seq < run.last_seq:
                missed = await app.store.list_events(execution_id, after_seq)
                run = run.model_copy(update={"events": missed})
        # A seq from the future (another run's, a typo) would hide every new event.
        after = max(0, min(after_seq, run.last_seq))
        run_stream = RunStream(app, run, after, live_events, recheck_seconds=recheck_seconds)
        del run  # the stream holds the snapshot only until its live tail begins
        try:
            yield run_stream
        finally:
            await run_stream.aclose()


async def follow(
    app: Ductwork,
    execution_id: str,
    after_seq: int = 0,
    *,
    recheck_seconds: float = RECHECK_SECONDS,
) -> AsyncIterator[Event]:
    """A run's events with seq > `after_seq`, then live ones, until `run_finished`.

    The generator form of `stream()` for callers that do not need the snapshot;
    `NotFound` is raised on the first iteration. Close it (`contextlib.aclosing`)
    when stopping early, so the subscription ends at once.
    """
    async with stream(app, execution_id, after_seq, recheck_seconds=recheck_seconds) as events:
        async for event in events:
            yield event


def event_json(event: Event) -> dict[str, Any]:
    """The wire shape of an event: {seq, type, node_id, timestamp, data}.

    A `node_waiting` event's `resume_url` is left out for a principal that may not
    resume the run (`ductwork.security.resume_links`); every other event
    costs one comparison more.
    """
    data = event.data
    if event.type == "node_waiting" and LINK_FIELD in data and not links_visible():
        data = without_link(data)
    return {
        "seq": event.seq,
        "type": event.type,
        "node_id": event.node_id,
        "timestamp": event.timestamp,
        "data": data,
    }


def encode_event(event: Event) -> bytes:
    """An event as JSON bytes (orjson; timestamps in RFC 3339)."""
    return orjson.dumps(event_json(event), option=orjson.OPT_NON_STR_KEYS, default=str)
