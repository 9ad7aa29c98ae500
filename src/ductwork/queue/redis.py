"""Redis-backed run queue (taskiq + taskiq-redis stream broker) and the sweep lock.

The queue only says "advance run X"; the store holds everything else. taskiq's
own crash reclaim (XAUTOCLAIM after `idle_timeout`) only runs after a non-empty
read and knows nothing about leases, so ductwork does not rely on it: expired
leases and due wake-ups are found by the sweep (`service.Ductwork.sweep_once`),
which one process at a time runs under `RedisSweepLock`.

The sweep finds a run due on every pass until a worker takes it (a backlog of
queued runs, a wake-up time that has come), so its enqueues are deduplicated:
each message is marked by a key `{namespace}:enqueued:{execution_id}` that the
consumer deletes when it takes the message, and the sweep adds a message only
when it can create that key (`SET NX`). So each run is in the stream once per
due time: once while it waits to be taken, again only after a worker took it
(and, say, parked it or died holding its lease). The key expires after
`pending_mark_seconds`, so a message lost after it was marked (trimmed by
`maxlen`, read by a worker that died before starting it) holds its run back
for at most that long; in a backlog longer than that, a run gets one extra
message per period instead of one per sweep. Explicit enqueues (a new run, a
retry, waking a cancelled parked run) always add a message, and mark it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task
from taskiq_redis import RedisStreamBroker

from ductwork.queue.base import RunHandler

log = logging.getLogger("ductwork.queue")

GROUP = "ductwork-workers"
TASK_NAME = "ductwork.advance_run"
RECEIVER_STOP_SECONDS = 1.0
"""How long `close` waits for taskiq's receiver to stop before forcing it."""
PENDING_MARK_SECONDS = 60.0
"""How long a message marks its run as pending when no worker takes it."""


class RedisQueue:
    """`Queue` on a Redis stream, consumed by every worker process in one consumer group."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 64,
        idle_timeout_seconds: float = 900.0,
        maxlen: int = 100_000,
        namespace: str = "ductwork",
        pending_mark_seconds: float = PENDING_MARK_SECONDS,
    ) -> None:
        self._concurrency = concurrency
        self._namespace = namespace
        self._pending_mark_ms = max(1, int(pending_mark_seconds * 1000))
        self.broker = RedisStreamBroker(
            url,
            queue_name=f"{namespace}:runs",
            consumer_group_name=GROUP,
            # "0": a group created after runs were enqueued still reads them.
            consumer_id="0",
            maxlen=maxlen,
            idle_timeout=int(idle_timeout_seconds * 1000),
            unacknowledged_lock_timeout=30,
            xread_block=1000,
            max_connection_pool_size=concurrency + 8,
        )
        self._redis = Redis(connection_pool=self.broker.connection_pool)
        self._handler: RunHandler | None = None

        async def advance_run(execution_id: str) -> None:
            await self._advance(execution_id)

        # taskiq wants a plain function (it renames it for process pools), not a bound method.
        self._task = self.broker.register_task(advance_run, task_name=TASK_NAME)
        self._receiver: asyncio.Task[None] | None = None
        self._started = False
        self._start_lock = asyncio.Lock()

    def _pending_key(self, execution_id: str) -> str:
        return f"{self._namespace}:enqueued:{execution_id}"

    async def _advance(self, execution_id: str) -> None:
        if self._handler is None:
            raise RuntimeError("this process does not consume runs")
        # Taken: whatever makes the run due from now on (it parks, this worker dies
        # holding its lease) needs a message of its own.
        try:
            await self._redis.delete(self._pending_key(execution_id))
        except RedisError as exc:  # the mark expires by itself
            log.warning("could not clear the enqueue mark of run %s: %s", execution_id, exc)
        await self._handler(execution_id)

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if not self._started:
                await self.broker.startup()
                self._started = True

    async def enqueue(self, execution_id: str) -> None:
        """Add a message for the run, whether or not one is pending."""
        await self._ensure_started()
        key = self._pending_key(execution_id)
        # Marked before the message exists, so a sweep in between skips a run that is
        # about to be in the stream rather than adding it a second time.
        await self._redis.set(key, b"1", px=self._pending_mark_ms)
        await self._send(key, execution_id)

    async def enqueue_unless_pending(self, execution_id: str) -> bool:
        """Add a message for the run unless an untaken one is marked; True when added."""
        await self._ensure_started()
        key = self._pending_key(execution_id)
        if not await self._redis.set(key, b"1", px=self._pending_mark_ms, nx=True):
            return False
        await self._send(key, execution_id)
        return True

    async def _send(self, key: str, execution_id: str) -> None:
        try:
            await self._task.kiq(execution_id)
        except BaseException:
            # No message went out: the next sweep must not take the mark for one.
            with contextlib.suppress(Exception):
                await self._redis.delete(key)
            raise

    async def start_consuming(self, handler: RunHandler) -> None:
        self._handler = handler
        await self._ensure_started()
        self.broker.is_worker_process = True
        self._receiver = asyncio.get_running_loop().create_task(
            run_receiver_task(
                self.broker,
                max_async_tasks=self._concurrency,
                propagate_exceptions=False,
                run_startup=False,
                # Acked once advanced; a crash leaves it pending, but the lease sweep
                # (not taskiq's reclaim) is what brings the run back.
                ack_time=AcknowledgeType.WHEN_EXECUTED,
            )
        )

    async def close(self) -> None:
        """Stop consuming (messages being advanced are cancelled, not acked) and disconnect."""
        if self._receiver is not None:
            await self._stop_receiver(self._receiver)
            self._receiver = None
        if self._started:
            await self.broker.shutdown()
            self._started = False

    async def _stop_receiver(self, receiver: asyncio.Task[None]) -> None:
        receiver.cancel()
        await asyncio.wait({receiver}, timeout=RECEIVER_STOP_SECONDS)
        while not receiver.done():
            # taskiq's receiver sometimes loses the cancellation of its pending stream
            # read and then waits on that read, shielded, forever (seen about once in
            # ten stops). Closing the connections ends the read; cancel again until
            # the receiver, free of its shield, ends.
            await self.broker.connection_pool.disconnect()
            receiver.cancel()
            await asyncio.wait({receiver}, timeout=RECEIVER_STOP_SECONDS)
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await receiver


_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""


class RedisSweepLock:
    """One process at a time runs the sweep: a Redis key with an expiry, renewed by its holder."""

    def __init__(self, url: str, *, ttl_seconds: float, namespace: str = "ductwork") -> None:
        self._redis = Redis(
            connection_pool=BlockingConnectionPool.from_url(url, max_connections=4, timeout=5)
        )
        self._key = f"{namespace}:sweep-lock"
        self._token = uuid.uuid4().hex
        self._ttl_ms = int(ttl_seconds * 1000)
        self._script: Any = self._redis.register_script(_RENEW)

    async def acquire(self) -> bool:
        """True when this process holds (or now took) the lock."""
        try:
            return bool(await self._script(keys=[self._key], args=[self._token, self._ttl_ms]))
        except Exception as exc:  # Redis down: nobody sweeps until it is back.
            log.warning("sweep lock unavailable: %s", exc)
            return False

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            if await self._redis.get(self._key) == self._token.encode():
                await self._redis.delete(self._key)
        await self._redis.aclose()
