"""The Redis `EventBus` adapter (scale-out mode): run events and control messages over pub/sub.

Run events go to channel `ductwork:run:{execution_id}` as the orjson of
`Event.model_dump(mode="json")`; control messages go to `ductwork:control`.

A process holds ONE Redis pub/sub connection for all its subscriptions, however
many local subscribers there are (an API process may serve thousands of
WebSockets): `SharedSubscriber` SUBSCRIBEs a channel when its first local
listener arrives, UNSUBSCRIBEs when its last one leaves, and a single reader
task dispatches each message to the channel's listeners. It reconnects (with
backoff) and re-subscribes after a drop. The Redis LLM cache reuses it to wait
for other processes' computations.

Pub/sub is best effort: an event published while a subscriber's connection is
down is lost to it, which is why events are also kept in the store, where
subscribers can replay them.

Publishing is batched (`RedisEventBus.publish_many`): events of a run published
within `PUBLISH_LINGER_SECONDS` (10 ms) of each other go out as ONE message (a JSON array,
in order), and the messages of every run due at once go out in one pipelined
round trip. A run's `run_finished` does not wait (a sync caller waits for it).
Subscribers see the same events in the same order, at most 10 ms later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from ductwork.events.memory import Subscription
from ductwork.models import Event

_EVENT_LIST: TypeAdapter[list[Event]] = TypeAdapter(list[Event])

log = logging.getLogger(__name__)

RUN_CHANNEL_PREFIX = "ductwork:run:"
CONTROL_CHANNEL = "ductwork:control"

CONNECT_TIMEOUT_SECONDS = 1.0
"""Short, so a dead Redis costs a node one second at most, not a TCP default."""
SOCKET_TIMEOUT_SECONDS = 2.0
POOL_WAIT_SECONDS = 5.0
"""How long a burst waits for a free pooled connection before the call degrades."""

REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisError, OSError)
"""What a Redis call raises when the server is unreachable, slow or refuses the command."""

PUBLISH_LINGER_SECONDS = 0.01
"""How long an event waits for others to share its message (run_finished never waits).

A 3-node run published 4 messages, one per commit (run_started, then one per node);
the wait lets the run's next commits (and other runs' events) join the message or
its round trip, and its run_finished sends everything pending at once. A person
watching a run live does not notice 10 ms."""
URGENT_EVENT_TYPES = frozenset({"run_finished"})
"""Events published without the linger: someone (a sync execute) is waiting for them."""

_READ_POLL_SECONDS = 1.0
_RECONNECT_INITIAL_SECONDS = 0.05
_RECONNECT_MAX_SECONDS = 5.0


def _payload(items: list[Any]) -> bytes:
    """A run's message: one event's JSON object, or an array of several, in order."""
    return orjson.dumps(items[0] if len(items) == 1 else items)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def stop_task(task: asyncio.Task[Any], *, retry_seconds: float = 1.0) -> None:
    """Cancel `task` and wait for it to end, cancelling it again while it runs on.

    redis-py now and then swallows a cancel that lands while a command waits for
    its reply: the command returns as if nothing happened (a stream reader's
    blocking read did so about once in 300 stops under load), so a loop around it
    runs on and one `cancel()` followed by an unbounded wait hung `close` for good.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=retry_seconds)


def run_channel(execution_id: str) -> str:
    """The pub/sub channel carrying one run's events."""
    return f"{RUN_CHANNEL_PREFIX}{execution_id}"


def redis_pool(
    url: str,
    *,
    max_connections: int,
    client_name: str,
) -> BlockingConnectionPool:
    """A pool for request/response commands, tuned to fail fast when Redis is gone.

    Blocking, because the default pool raises `MaxConnectionsError` under bursts
    instead of waiting. One immediate retry on connection errors covers a pooled
    connection that went stale (Redis restarted); timeouts are not retried, so a
    hung server stalls a caller for one socket timeout only.
    """
    return BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=POOL_WAIT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        client_name=client_name,
    )


class RateLimitedWarning:
    """Logs a warning at most once per interval, counting the ones it held back.

    A dead Redis makes every call fail; one line per interval says so without
    flooding the log.
    """

    def __init__(self, logger: logging.Logger, interval_seconds: float = 30.0) -> None:
        """Warn through `logger`, at most once per `interval_seconds`."""
        self._logger = logger
        self._interval = interval_seconds
        self._last: float | None = None
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        """Log `message % args` unless a warning was logged less than an interval ago."""
        now = time.monotonic()
        if self._last is not None and now - self._last < self._interval:
            self._suppressed += 1
            return
        if self._suppressed:
            message += " (%d similar warnings suppressed)"
            args = (*args, self._suppressed)
        self._last = now
        self._suppressed = 0
        self._logger.warning(message, *args)


class _Channel:
    """Local state of one channel that has (or just had) listeners."""

    __slots__ = ("listeners", "live", "on_live", "pending", "waiters")

    def __init__(self) -> None:
        self.listeners: dict[object, Callable[[bytes], None]] = {}
        # Called each time Redis acknowledges the channel's SUBSCRIBE (first time and
        # after every reconnect): messages published while it was down are lost.
        self.on_live: dict[object, Callable[[], None]] = {}
        # live: Redis acknowledged the SUBSCRIBE on the current connection.
        # pending: a SUBSCRIBE was queued there and its acknowledgement is awaited.
        self.live = False
        self.pending = False
        self.waiters: list[asyncio.Future[None]] = []

    def wake(self) -> None:
        for waiter in self.waiters:
            if not waiter.done():
                waiter.set_result(None)
        self.waiters.clear()


_Command = tuple[str, tuple[str, ...]] | None
"""(SUBSCRIBE or UNSUBSCRIBE, channels); None stops the writer."""


class SharedSubscriber:
    """One Redis pub/sub connection shared by every local listener of every channel.

    `listen(channel, callback)` registers a callback for the channel's message
    payloads; the channel is SUBSCRIBEd while it has at least one listener.

    Local state changes synchronously and queues its SUBSCRIBE/UNSUBSCRIBE
    commands in one FIFO that a writer task sends, so Redis sees them in the
    order the state changed and a cancelled caller can never leave a command
    half-sent. A channel has at most one SUBSCRIBE awaiting acknowledgement
    (the last listener leaving defers its UNSUBSCRIBE until the acknowledgement
    arrives), so the next `subscribe` reply for a channel is always the one its
    new listeners are waiting for.
    """

    def __init__(
        self,
        url: str,
        *,
        client_name: str,
        ack_timeout_seconds: float = 2.0,
    ) -> None:
        """Connect lazily to `url`, on the first `listen`."""
        # Its own pool without retries: connection errors must reach the reader
        # loop, which reconnects and re-subscribes itself (redis-py's own
        # reconnect would re-subscribe behind our back).
        self._pool: ConnectionPool = ConnectionPool.from_url(
            url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
            client_name=client_name,
        )
        self._client = Redis(connection_pool=self._pool)
        self._ack_timeout = ack_timeout_seconds
        self._channels: dict[str, _Channel] = {}
        # The current connection's command queue; None while disconnected.
        self._outbox: asyncio.Queue[_Command] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._warn = RateLimitedWarning(log)

    @property
    def channel_count(self) -> int:
        """How many channels have local listeners."""
        return sum(1 for state in self._channels.values() if state.listeners)

    def listener_count(self, channel: str) -> int:
        """How many local listeners a channel has."""
        state = self._channels.get(channel)
        return len(state.listeners) if state is not None else 0

    @asynccontextmanager
    async def listen(
        self,
        channel: str,
        callback: Callable[[bytes], None],
        on_live: Callable[[], None] | None = None,
    ) -> AsyncIterator[bool]:
        """Call `callback(payload)` for each message on `channel` until exit.

        `on_live()` is called whenever the subscription becomes live, after a
        reconnect too (a listener that caches may have missed messages meanwhile).

        Yields True once Redis has acknowledged the subscription, so nothing
        published afterwards is missed; False if no acknowledgement came within
        the ack timeout (Redis unreachable): the listener stays registered and
        receives messages once the reader has reconnected.
        """
        if self._closed:
            raise RuntimeError("SharedSubscriber is closed")
        self._start_reader()
        state = self._channels.get(channel)
        if state is None:
            state = self._channels[channel] = _Channel()
        token = object()
        state.listeners[token] = callback
        if on_live is not None:
            state.on_live[token] = on_live
        try:
            yield await self._until_live(channel, state)
        finally:
            del state.listeners[token]
            state.on_live.pop(token, None)
            if not state.listeners:
                self._forget(channel, state)

    async def _until_live(self, channel: str, state: _Channel) -> bool:
        if state.live:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        if self._outbox is not None and not state.pending:
            state.pending = True
            self._outbox.put_nowait(("SUBSCRIBE", (channel,)))
        # While disconnected, the reader subscribes every channel with listeners
        # once it has reconnected.
        try:
            async with asyncio.timeout(self._ack_timeout):
                await waiter
            return True
        except TimeoutError:
            self._warn(
                "Redis did not acknowledge SUBSCRIBE %s within %.1f s; "
                "messages may be missed until it reconnects",
                channel,
                self._ack_timeout,
            )
            return False
        finally:
            if waiter in state.waiters:
                state.waiters.remove(waiter)

    def _forget(self, channel: str, state: _Channel) -> None:
        """The last listener left: unsubscribe, or let the pending acknowledgement do it."""
        if state.pending or self._channels.get(channel) is not state:
            return
        del self._channels[channel]
        if state.live and self._outbox is not None:
            self._outbox.put_nowait(("UNSUBSCRIBE", (channel,)))

    def _start_reader(self) -> None:
        if self._reader is None or self._reader.done():
            self._reader = asyncio.get_running_loop().create_task(
                self._read_forever(), name="ductwork-redis-subscriber"
            )

    async def _read_forever(self) -> None:
        delay = _RECONNECT_INITIAL_SECONDS
        while not self._closed:
            pubsub = self._client.pubsub()
            writer: asyncio.Task[None] | None = None
            try:
                await pubsub.connect()  # type: ignore[no-untyped-call]
                outbox = self._connected()
                writer = asyncio.get_running_loop().create_task(self._write(pubsub, outbox))
                while not self._closed:
                    message = await pubsub.get_message(timeout=_READ_POLL_SECONDS)
                    if message is not None:
                        delay = _RECONNECT_INITIAL_SECONDS
                        self._handle(message)
                    if writer.done():
                        writer.result()  # re-raise why it stopped, to reconnect
            except asyncio.CancelledError:
                raise
            except REDIS_ERRORS as exc:
                self._warn("Redis pub/sub connection lost (%s); reconnecting", exc)
            except Exception:
                # A bug must not silently end every subscription of the process.
                log.exception("Redis pub/sub reader failed; reconnecting")
            finally:
                self._disconnected()
                if writer is not None:
                    # The sentinel as well as cancel(): redis-py can swallow a
                    # cancellation that races a send (`stop_task`).
                    outbox.put_nowait(None)
                    await stop_task(writer)
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            # Full jitter, so many processes do not reconnect in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    def _connected(self) -> asyncio.Queue[_Command]:
        """A fresh command queue for a new connection, starting with every wanted channel."""
        outbox: asyncio.Queue[_Command] = asyncio.Queue()
        wanted = []
        for channel, state in list(self._channels.items()):
            if state.listeners:
                state.pending = True
                wanted.append(channel)
            else:
                del self._channels[channel]
        if wanted:
            outbox.put_nowait(("SUBSCRIBE", tuple(wanted)))
        self._outbox = outbox
        return outbox

    def _disconnected(self) -> None:
        self._outbox = None
        for state in self._channels.values():
            state.live = False
            state.pending = False

    @staticmethod
    async def _write(pubsub: PubSub, outbox: asyncio.Queue[_Command]) -> None:
        while (item := await outbox.get()) is not None:
            command, channels = item
            if command == "SUBSCRIBE":
                await pubsub.subscribe(*channels)
            else:
                await pubsub.unsubscribe(*channels)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "message":
            state = self._channels.get(message["channel"].decode())
            if state is None:
                return
            data: bytes = message["data"]
            for callback in list(state.listeners.values()):
                try:
                    callback(data)
                except Exception:
                    log.exception("a pub/sub listener failed")
        elif kind == "subscribe":
            self._acknowledged(message["channel"].decode())

    def _acknowledged(self, channel: str) -> None:
        state = self._channels.get(channel)
        if state is not None and state.listeners:
            state.pending = False
            state.live = True
            state.wake()
            for notify in list(state.on_live.values()):
                try:
                    notify()
                except Exception:
                    log.exception("a pub/sub on_live callback failed")
            return
        # Nobody listens any more: the last listener left while the SUBSCRIBE was in flight.
        if state is not None:
            del self._channels[channel]
        if self._outbox is not None:
            self._outbox.put_nowait(("UNSUBSCRIBE", (channel,)))

    async def close(self) -> None:
        """Stop the reader and close the connection."""
        self._closed = True
        if self._reader is not None:
            await stop_task(self._reader)
            self._reader = None
        for state in self._channels.values():
            state.wake()
        self._channels.clear()
        await self._client.aclose()
        await self._pool.aclose()


class RedisEventBus:
    """`EventBus` over Redis pub/sub, for several API and worker processes.

    Publishing uses a pooled connection; every subscription of this process
    shares one pub/sub connection. A subscriber's buffer is bounded and drops
    the oldest events (it can replay them from the store), like the in-process
    bus. Publish errors are logged and swallowed: events are in the store too.
    """

    def __init__(
        self,
        url: str,
        *,
        max_connections: int = 50,
        subscribe_timeout_seconds: float = 2.0,
        client_name: str = "ductwork-events",
        namespace: str = "ductwork",
        linger_seconds: float = PUBLISH_LINGER_SECONDS,
    ) -> None:
        """Connect lazily to the Redis at `url`.

        `linger_seconds`: how long a published event waits for others to share its
        message and round trip (see the module docstring); 0 sends on the next loop
        iteration.

        `namespace` prefixes the channels (`{namespace}:run:{id}`, `{namespace}:control`),
        so deployments sharing one Redis do not hear each other.

        `subscribe_timeout_seconds` bounds how long entering `subscribe` waits
        for Redis to acknowledge; past it the subscription is entered anyway
        (with a warning) so a Redis outage degrades live updates, not runs.
        """
        self._run_prefix = f"{namespace}:run:"
        self._control_channel = f"{namespace}:control"
        self._pool = redis_pool(url, max_connections=max_connections, client_name=client_name)
        self._redis = Redis(connection_pool=self._pool)
        self._subscriber = SharedSubscriber(
            url, client_name=client_name, ack_timeout_seconds=subscribe_timeout_seconds
        )
        self._warn = RateLimitedWarning(log)
        # Every local subscriber of a run gets the same payload object, so decode it once.
        self._last_payload: bytes | None = None
        self._last_events: list[Event] = []
        self._linger = linger_seconds
        # The next batch (channel -> events dumped for JSON, in order); one sender task
        # sends batches one after the other, so a channel's messages leave in the
        # order their events were published.
        self._batch: dict[str, list[Any]] = {}
        self._urgent = False
        self._wake = asyncio.Event()
        self._hurry: asyncio.Future[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._in_flight: dict[str, list[Any]] | None = None
        """The batch being sent (taken out of `_batch`), until it has gone out."""

    @property
    def subscriber(self) -> SharedSubscriber:
        """The shared pub/sub connection (for metrics and tests)."""
        return self._subscriber

    async def _publish(self, channel: str, payload: bytes) -> None:
        try:
            await self._redis.publish(channel, payload)
        except REDIS_ERRORS as exc:
            self._warn("Redis PUBLISH to %s failed: %s", channel, exc)

    async def publish(self, execution_id: str, event: Event) -> None:
        """Send an event to every process's subscribers of the run (best effort)."""
        await self.publish_many(execution_id, (event,))

    async def publish_many(self, execution_id: str, events: Sequence[Event]) -> None:
        """Send events of one run, in order (best effort); returns once they are queued.

        They join the pending batch: one message per run (a JSON array when it holds
        more than one event) and one pipelined round trip for every run in it, sent
        after the linger or at once when an event is urgent (`URGENT_EVENT_TYPES`).
        Not waiting for the send matters: a run's publisher (the checkpointer's pump)
        that waited out the linger would hold its run_finished back behind it.
        """
        if not events:
            return
        loop = asyncio.get_running_loop()
        channel = self._run_prefix + execution_id
        pending = self._batch.get(channel)
        if pending is None:
            pending = self._batch[channel] = []
        pending.extend(event.model_dump(mode="json") for event in events)
        if not self._urgent and any(event.type in URGENT_EVENT_TYPES for event in events):
            self._urgent = True
            if self._hurry is not None:
                _resolve(self._hurry)
        self._wake.set()
        if self._sender is None or self._sender.done():
            self._sender = loop.create_task(self._send_batches(), name="ductwork-redis-publisher")

    async def _send_batches(self) -> None:
        """Send each batch after its linger (or at once when urgent), one at a time."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            if not self._batch:
                continue
            if not self._urgent and self._linger > 0:
                hurry = self._hurry = loop.create_future()
                timer = loop.call_later(self._linger, _resolve, hurry)
                try:
                    await hurry
                finally:
                    timer.cancel()
                    self._hurry = None
            try:
                await self._send_batch()
            except Exception:  # a bug must not stop every later publish of the process
                log.exception("publishing run events failed")

    async def _send_batch(self) -> None:
        batch, self._batch, self._urgent = self._batch, {}, False
        self._in_flight = batch
        try:
            await self._send(batch)
        except asyncio.CancelledError:
            raise  # still in flight: `close` sends it again (it may not have gone out)
        except BaseException:
            self._in_flight = None
            raise
        self._in_flight = None

    async def _send(self, batch: dict[str, list[Any]]) -> None:
        if len(batch) == 1:
            [(channel, items)] = batch.items()
            await self._publish(channel, _payload(items))
        elif batch:
            pipe = self._redis.pipeline(transaction=False)
            for channel, items in batch.items():
                pipe.publish(channel, _payload(items))
            try:
                await pipe.execute()
            except REDIS_ERRORS as exc:
                self._warn("Redis PUBLISH of %d runs' events failed: %s", len(batch), exc)

    def _decode_events(self, payload: bytes) -> list[Event]:
        if payload is self._last_payload:
            return self._last_events
        try:
            if payload[:1] == b"[":
                events = _EVENT_LIST.validate_json(payload)
            else:
                events = [Event.model_validate_json(payload)]
        except ValidationError:
            log.warning("ignoring an unreadable run event: %r", payload[:200])
            return []
        self._last_payload, self._last_events = payload, events
        return events

    @asynccontextmanager
    async def subscribe(self, execution_id: str) -> AsyncIterator[AsyncIterator[Event]]:
        """Events of one run published (by any process) after entering, until exit."""
        subscription: Subscription[Event] = Subscription()

        def deliver(payload: bytes) -> None:
            for event in self._decode_events(payload):
                subscription.put(event)

        async with self._subscriber.listen(self._run_prefix + execution_id, deliver):
            yield aiter(subscription)

    async def publish_control(self, message: dict[str, str]) -> None:
        """Broadcast a control message (e.g. cancel) to every process."""
        await self._publish(self._control_channel, orjson.dumps(message))

    @asynccontextmanager
    async def subscribe_control(self) -> AsyncIterator[AsyncIterator[dict[str, str]]]:
        """Control messages from any process, published after entering."""
        subscription: Subscription[dict[str, str]] = Subscription()

        def deliver(payload: bytes) -> None:
            try:
                message = orjson.loads(payload)
            except orjson.JSONDecodeError:
                message = None
            if not isinstance(message, dict):
                log.warning("ignoring an unreadable control message: %r", payload[:200])
                return
            subscription.put({str(key): str(value) for key, value in message.items()})

        def connected() -> None:
            # Tells listeners that messages may have been missed while disconnected
            # (the authentication cache drops everything on it).
            subscription.put({"action": "control_connected"})

        async with self._subscriber.listen(self._control_channel, deliver, connected):
            yield aiter(subscription)

    def subscriber_count(self, execution_id: str) -> int:
        """How many live subscribers a run has in this process (for tests and metrics)."""
        return self._subscriber.listener_count(self._run_prefix + execution_id)

    async def close(self) -> None:
        """Send what is still batched, then close the pub/sub and publishing connections."""
        if self._sender is not None:
            await stop_task(self._sender)
            self._sender = None
        if self._in_flight:
            # Cut off mid-send: sent again, ahead of what came after it (at least once).
            in_flight, self._in_flight = self._in_flight, None
            for channel, items in self._batch.items():
                in_flight.setdefault(channel, []).extend(items)
            self._batch = in_flight
        if self._batch:
            await self._send_batch()
        await self._subscriber.close()
        await self._redis.aclose()
        await self._pool.aclose()
