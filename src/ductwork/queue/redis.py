"""Redis-backed run queue (a Redis stream read by a consumer group) and the sweep lock.

The queue only says "advance run X"; the store holds everything else, and
ductwork does not rely on the stream for durability: expired leases, runs the
queue lost and due wake-ups are found by the sweep (`service.Ductwork.sweep_once`),
which one process at a time runs under `RedisSweepLock`. So workers read with
NOACK: a message is done with once read (no pending-entries list, no XACK, no
reclaim of other consumers' messages); a worker that dies holding messages leaves
their runs to the sweep, as it would a leased run.

Messages keep taskiq's shape (stream `{namespace}:runs`, consumer group
`ductwork-workers`, field `data` holding the JSON of a task named
`ductwork.advance_run` whose one argument is the execution id), so processes of
an older ductwork (which sent and read them through taskiq-redis) and this one
can share a deployment during an upgrade. Talking to the stream directly costs
one round trip per enqueue (a script marks the run and adds the message) and one
per batch read (the read carries the previous batch's mark deletions), where
taskiq made a client object per call and a lock-guarded reclaim after every
read: about five round trips per run.

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
import random
import uuid
from typing import Any

import orjson
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import ResponseError

from ductwork.events.redis import REDIS_ERRORS, RateLimitedWarning, redis_pool, stop_task
from ductwork.queue.base import RunHandler

log = logging.getLogger("ductwork.queue")

GROUP = "ductwork-workers"
TASK_NAME = "ductwork.advance_run"
READ_BLOCK_MS = 1000
"""How long one stream read waits for a message (then it reads again)."""
CLOSE_WAIT_SECONDS = 1.0
"""How long `close` waits for the runs being advanced to stop once cancelled."""
PENDING_MARK_SECONDS = 60.0
"""How long a message marks its run as pending when no worker takes it."""
_RETRY_INITIAL_SECONDS = 0.05
_RETRY_MAX_SECONDS = 5.0

# KEYS: mark, stream. ARGV: mark ms, maxlen, data, only-if-unmarked ("1" or "0").
# Marked before the message exists, in one step, so a sweep can never see the
# message without its mark (and add it a second time).
_ENQUEUE = """
if ARGV[4] == '1' then
  if not redis.call('set', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 0 end
else
  redis.call('set', KEYS[1], '1', 'PX', ARGV[1])
end
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'data', ARGV[3])
return 1
"""


def message_data(execution_id: str) -> bytes:
    """A stream message's `data`: taskiq's JSON task message (see the module docstring)."""
    return orjson.dumps(
        {
            "task_id": uuid.uuid4().hex,
            "task_name": TASK_NAME,
            "labels": {},
            "labels_types": {},
            "args": [execution_id],
            "kwargs": {},
        }
    )


def execution_id_of(data: bytes) -> str | None:
    """The execution id a message's `data` asks to advance; None when it is not one."""
    try:
        message = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("task_name") != TASK_NAME:
        return None
    args = message.get("args")
    if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], str):
        return None
    return args[0]


class RedisQueue:
    """`Queue` on a Redis stream, consumed by every worker process in one consumer group."""

    local = False
    """Any worker may take what is enqueued here (`Queue.local`)."""

    def __init__(
        self,
        url: str,
        *,
        concurrency: int = 64,
        maxlen: int = 100_000,
        namespace: str = "ductwork",
        pending_mark_seconds: float = PENDING_MARK_SECONDS,
    ) -> None:
        """Connect lazily to `url`.

        `concurrency`: runs this process advances at once (a read asks for at most
        the free slots). Nothing is reclaimed from the stream: the sweep brings back
        runs whose message was lost.
        """
        self._concurrency = max(1, concurrency)
        self._namespace = namespace
        self._stream = f"{namespace}:runs"
        self._maxlen = str(maxlen)
        self._pending_mark_ms = str(max(1, int(pending_mark_seconds * 1000)))
        # Enough for the reader (holding one through its blocking read) and bursts of
        # enqueues; past it callers wait for a connection instead of failing.
        self._pool = redis_pool(url, max_connections=32, client_name="ductwork-queue")
        self._redis = Redis(connection_pool=self._pool)
        self._enqueue_script: Any = self._redis.register_script(_ENQUEUE)
        self._consumer = f"ductwork-{uuid.uuid4().hex}"
        self._handler: RunHandler | None = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._running: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._warn = RateLimitedWarning(log)

    def _pending_key(self, execution_id: str) -> str:
        return f"{self._namespace}:enqueued:{execution_id}"

    async def enqueue(self, execution_id: str) -> None:
        """Add a message for the run, whether or not one is pending (one round trip)."""
        await self._add(execution_id, only_unmarked=False)

    async def enqueue_unless_pending(self, execution_id: str) -> bool:
        """Add a message for the run unless an untaken one is marked; True when added."""
        return await self._add(execution_id, only_unmarked=True)

    async def _add(self, execution_id: str, *, only_unmarked: bool) -> bool:
        args = [
            self._pending_mark_ms,
            self._maxlen,
            message_data(execution_id),
            "1" if only_unmarked else "0",
        ]
        added = await self._enqueue_script(
            keys=[self._pending_key(execution_id), self._stream], args=args
        )
        return bool(added)

    async def start_consuming(self, handler: RunHandler) -> None:
        """Read the stream in the background, advancing up to `concurrency` runs at once."""
        self._handler = handler
        if self._reader is None:
            self._reader = asyncio.get_running_loop().create_task(
                self._consume(), name="ductwork-queue-reader"
            )

    async def _create_group(self) -> None:
        try:
            # "0": a group created after runs were enqueued still reads them.
            await self._redis.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _consume(self) -> None:
        """Read batches of messages and start a task per run, forever.

        The marks of a batch's runs are deleted by the next request (with the next
        read, or alone when no slot is free): taken, whatever makes a run due from
        now on (it parks, this worker dies holding its lease) needs a message of its
        own.
        """
        marks: list[str] = []
        delay = _RETRY_INITIAL_SECONDS
        group_ready = False
        # The flag as well as the cancel: redis-py can swallow a cancel (`stop_task`).
        while not self._closing:
            try:
                if not group_ready:
                    await self._create_group()
                    group_ready = True
                free = self._concurrency - len(self._running)
                if free <= 0:
                    if marks:
                        await self._redis.delete(*marks)
                        marks = []
                    self._slot_freed.clear()
                    # Re-checked after the clear: a run may have ended during the delete.
                    if len(self._running) >= self._concurrency:
                        await self._slot_freed.wait()
                    continue
                pipe = self._redis.pipeline(transaction=False)
                if marks:
                    pipe.delete(*marks)
                pipe.xreadgroup(
                    GROUP,
                    self._consumer,
                    {self._stream: ">"},
                    count=free,
                    block=READ_BLOCK_MS,
                    noack=True,
                )
                replies = await pipe.execute()
                marks = []
                delay = _RETRY_INITIAL_SECONDS
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                if "NOGROUP" in str(exc):  # the stream was deleted: make it again
                    group_ready = False
                self._warn("reading the run stream failed: %s", exc)
            except REDIS_ERRORS as exc:
                self._warn("reading the run stream failed (%s); retrying", exc)
            except Exception:
                log.exception("the run stream reader failed; retrying")
            else:
                marks = self._start(replies[-1])
                continue
            # Full jitter, so many workers do not come back in lockstep.
            await asyncio.sleep(random.uniform(0, delay))
            delay = min(delay * 2, _RETRY_MAX_SECONDS)

    def _start(self, fetched: Any) -> list[str]:
        """Start advancing the runs of a read; the marks to delete."""
        marks = []
        for _stream, entries in fetched or ():
            for _id, fields in entries:
                execution_id = execution_id_of(fields.get(b"data", b""))
                if execution_id is None:
                    log.warning("ignoring an unreadable run message: %r", fields)
                    continue
                marks.append(self._pending_key(execution_id))
                task = asyncio.get_running_loop().create_task(self._advance(execution_id))
                self._running.add(task)
                task.add_done_callback(self._finished)
        return marks

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slot_freed.set()

    async def _advance(self, execution_id: str) -> None:
        if self._handler is None:
            raise RuntimeError("this process does not consume runs")
        try:
            await self._handler(execution_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The run stays in the store as it was; the sweep brings it back.
            log.exception("advancing run %s failed", execution_id)

    async def close(self) -> None:
        """Stop consuming (runs being advanced are cancelled) and disconnect."""
        self._closing = True
        if self._reader is not None:
            await stop_task(self._reader)
            self._reader = None
        running = set(self._running)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running, timeout=CLOSE_WAIT_SECONDS)
        await self._redis.aclose()
        await self._pool.aclose()


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
