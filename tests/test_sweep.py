"""The sweep enqueues each due run once per due time, not once per pass.

A backlog (queued runs nobody took yet, wake-ups that came) is found by every
sweep until a worker takes it; each run must be in the queue once while it
waits, and again only after a worker took it. Explicit enqueues always go
through. Redis cases run against the real Redis under a private namespace.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from ductwork.models import Checkpoint, Run, RunStatus, WorkflowDefinition, utcnow
from ductwork.queue.redis import RedisQueue
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from tests.support.polling import eventually

SWEEPS = 10
DEFINITION = WorkflowDefinition.model_validate(
    {"name": "backlog", "nodes": [{"id": "start", "type": "start"}], "edges": []}
)


async def backlog(app: Ductwork, queued: int = 4) -> list[str]:
    """Runs every sweep finds due: queued runs the queue lost, and a wake-up that came."""
    long_ago = utcnow() - timedelta(minutes=5)
    ids = []
    for index in range(queued + 1):
        run = Run(
            execution_id=f"backlog-{index}-{uuid.uuid4().hex[:8]}",
            workflow_id="wf",
            workflow_version=1,
            definition=DEFINITION,
            created_at=long_ago + timedelta(seconds=index),
        )
        await app.store.create_run(run)
        ids.append(run.execution_id)
    # The last one is parked, with its wake time past.
    await app.store.checkpoint(
        ids[-1],
        Checkpoint(run_fields={"status": RunStatus.WAITING, "wake_at": long_ago}),
    )
    return ids


# In-process queue -------------------------------------------------------------------


@pytest.fixture
async def unstarted_app(tmp_path: Path) -> AsyncIterator[Ductwork]:
    """An embedded app whose store is open but whose queue nobody consumes."""
    app = build(Settings(data_dir=tmp_path))
    await app.store.start()
    yield app
    await app.close()


async def test_in_process_sweeps_enqueue_a_backlog_once(unstarted_app: Ductwork) -> None:
    app = unstarted_app
    ids = await backlog(app)
    enqueued = [await app.sweep_once() for _ in range(SWEEPS)]
    assert sorted(enqueued[0]) == sorted(ids)
    assert enqueued[1:] == [[]] * (SWEEPS - 1)
    assert app.queue.pending() == len(ids)  # type: ignore[attr-defined]
    # An explicit enqueue of a run already waiting is served by the message that waits.
    await app.queue.enqueue(ids[0])
    assert app.queue.pending() == len(ids)  # type: ignore[attr-defined]


async def test_sweep_only_enqueues_the_run_it_is_limited_to(unstarted_app: Ductwork) -> None:
    app = unstarted_app
    ids = await backlog(app)
    assert await app.sweep_once(only=ids[2]) == [ids[2]]
    assert await app.sweep_once(only="no-such-run") == []
    assert sorted(await app.sweep_once()) == sorted(set(ids) - {ids[2]})


# Redis queue ------------------------------------------------------------------------


@pytest.fixture
async def api_app(tmp_path: Path, redis_url: str, namespace: str) -> AsyncIterator[Ductwork]:
    """An API-role app on the Redis queue: it enqueues and sweeps, nobody consumes."""
    app = build(
        Settings(data_dir=tmp_path, redis_url=redis_url, redis_namespace=namespace), role="api"
    )
    await app.store.start()
    yield app
    await app.close()


async def stream_runs(raw: aioredis.Redis, namespace: str) -> Counter[str]:
    """How many messages the run stream holds for each execution id."""
    entries = await raw.xrange(f"{namespace}:runs")
    return Counter(orjson.loads(fields[b"data"])["args"][0] for _, fields in entries)


@pytest.mark.redis
async def test_redis_sweeps_put_each_run_in_the_stream_once_per_due_time(
    api_app: Ductwork, raw_redis: aioredis.Redis, namespace: str, redis_url: str
) -> None:
    app = api_app
    ids = await backlog(app)
    for _ in range(SWEEPS):
        await app.sweep_once()
    assert await raw_redis.xlen(f"{namespace}:runs") == len(ids)
    assert await stream_runs(raw_redis, namespace) == Counter(ids)

    # Explicit enqueues always go through, pending or not; the sweep then still skips.
    await app.queue.enqueue(ids[0])
    await app.sweep_once()
    assert (await stream_runs(raw_redis, namespace))[ids[0]] == 2

    # A worker takes the messages (and, here, leaves the runs due): each run's next
    # due time gets one new message, however many sweeps pass.
    taken: list[str] = []

    async def take(execution_id: str) -> None:
        taken.append(execution_id)

    consumer = RedisQueue(redis_url, namespace=namespace, concurrency=4)
    await consumer.start_consuming(take)
    try:
        await eventually(lambda: len(taken) == len(ids) + 1, within=30, what="messages taken")
    finally:
        await consumer.close()
    for _ in range(SWEEPS):
        await app.sweep_once()
    runs = await stream_runs(raw_redis, namespace)
    assert runs == Counter({**dict.fromkeys(ids, 2), ids[0]: 3})


@pytest.mark.redis
async def test_redis_pending_mark_expires_so_a_lost_message_is_sent_again(
    tmp_path: Path, redis_url: str, raw_redis: aioredis.Redis, namespace: str
) -> None:
    # The mark lasts two leases (at least 2 s): a message lost with a worker that died
    # before leasing its run is offered again about when a dead worker's lease lapses.
    settings = Settings(
        data_dir=tmp_path,
        redis_url=redis_url,
        redis_namespace=namespace,
        lease_seconds=1.0,
        heartbeat_seconds=0.5,
    )
    app = build(settings, role="api")
    await app.store.start()
    try:
        (only, *_) = await backlog(app, queued=0)
        assert await app.sweep_once() == [only]
        assert await app.sweep_once() == []
        # Say the message was trimmed from the stream: once the mark lapses, the run is
        # enqueued again rather than waiting for a message that will never come.
        await raw_redis.xtrim(f"{namespace}:runs", maxlen=0)
        mark = f"{namespace}:enqueued:{only}"

        async def mark_gone() -> bool:
            return await raw_redis.exists(mark) == 0

        await eventually(mark_gone, within=10, what="the mark to expire")
        assert await app.sweep_once() == [only]
        assert await stream_runs(raw_redis, namespace) == Counter({only: 1})
    finally:
        await app.close()


@pytest.mark.redis
async def test_redis_queue_close_returns_even_mid_read(redis_url: str, namespace: str) -> None:
    # A worker must stop while its reader waits in a blocking stream read (taskiq's
    # receiver, used before, now and then ignored that cancel: about 1 stop in 10 hung).
    for attempt in range(12):
        producer = RedisQueue(redis_url, namespace=f"{namespace}-{attempt}")
        consumer = RedisQueue(redis_url, namespace=f"{namespace}-{attempt}", concurrency=4)
        taken: list[str] = []

        async def take(execution_id: str, into: list[str] = taken) -> None:
            into.append(execution_id)

        try:
            for index in range(6):
                await producer.enqueue(f"run-{index}")
            await consumer.start_consuming(take)
            await eventually(lambda into=taken: len(into) == 6, within=30, what="messages taken")
        finally:
            closing = asyncio.ensure_future(consumer.close())
            done, _ = await asyncio.wait({closing}, timeout=60)
            await producer.close()
        assert done, f"RedisQueue.close hung on stop {attempt + 1}"


class _SwallowsOneCancel:
    """A pipeline whose reply comes back even when the caller was cancelled meanwhile.

    That is what redis-py does now and then when a cancel lands while a blocking
    read waits for its reply (about one stop in 300 under load).
    """

    def __init__(self, real: object, swallowed: list[bool]) -> None:
        self._real = real
        self._swallowed = swallowed

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)

    async def execute(self) -> list[object]:
        execute = self._real.execute  # type: ignore[attr-defined]
        commands = len(self._real)  # type: ignore[arg-type]
        if self._swallowed:
            return list(await execute())
        try:
            return list(await execute())
        except asyncio.CancelledError:
            self._swallowed.append(True)
            # The reply a blocking read gives when nothing came: an empty batch.
            return [[]] * commands


async def test_redis_queue_close_returns_when_a_read_swallows_the_cancel(
    redis_url: str, namespace: str
) -> None:
    consumer = RedisQueue(redis_url, namespace=namespace)
    swallowed: list[bool] = []
    real_pipeline = consumer._redis.pipeline
    consumer._redis.pipeline = (  # type: ignore[method-assign]
        lambda *args, **kwargs: _SwallowsOneCancel(real_pipeline(*args, **kwargs), swallowed)
    )

    async def take(execution_id: str) -> None:
        return None

    async def reading() -> bool:
        clients = await consumer._redis.client_list()
        return any(entry.get("cmd") == "xreadgroup" for entry in clients)

    await consumer.start_consuming(take)
    await eventually(reading, what="the reader in its blocking stream read")
    closing = asyncio.ensure_future(consumer.close())
    done, _ = await asyncio.wait({closing}, timeout=30)
    assert swallowed, "the read in flight never saw the cancel"
    assert done, "RedisQueue.close waited for good on a reader that swallowed its cancel"
