"""The Redis run queue (`ductwork.queue.redis`): a stream read with NOACK, taskiq's message shape.

Against the real Redis under a private namespace.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis.asyncio as aioredis

from ductwork.queue.redis import GROUP, TASK_NAME, RedisQueue
from tests.support.polling import eventually

pytestmark = pytest.mark.redis


async def test_a_taken_message_leaves_no_pending_entry_and_no_mark(
    redis_url: str, raw_redis: aioredis.Redis, namespace: str
) -> None:
    producer = RedisQueue(redis_url, namespace=namespace)
    consumer = RedisQueue(redis_url, namespace=namespace, concurrency=4)
    taken: list[str] = []

    async def take(execution_id: str) -> None:
        taken.append(execution_id)

    try:
        await producer.enqueue("run-1")
        assert await raw_redis.exists(f"{namespace}:enqueued:run-1") == 1
        await consumer.start_consuming(take)
        await eventually(lambda: taken == ["run-1"], within=10, what="the run taken")

        async def mark_gone() -> bool:
            return await raw_redis.exists(f"{namespace}:enqueued:run-1") == 0

        await eventually(mark_gone, within=10, what="the mark deleted")
        # NOACK: nothing waits for an acknowledgement (the sweep brings runs back).
        pending = await raw_redis.xpending(f"{namespace}:runs", GROUP)
        assert pending["pending"] == 0
    finally:
        await consumer.close()
        await producer.close()


async def test_messages_keep_taskiqs_shape_both_ways(
    redis_url: str, raw_redis: aioredis.Redis, namespace: str
) -> None:
    # Processes of an older ductwork sent and read these through taskiq-redis: during an
    # upgrade both kinds share the stream.
    stream = f"{namespace}:runs"
    producer = RedisQueue(redis_url, namespace=namespace)
    try:
        await producer.enqueue("new-run")
        ((_, fields),) = await raw_redis.xrange(stream)
        message = orjson.loads(fields[b"data"])
        assert message["task_name"] == TASK_NAME
        assert message["args"] == ["new-run"]
        assert message["kwargs"] == {} and isinstance(message["task_id"], str)
    finally:
        await producer.close()

    old = {
        "task_id": "f" * 32,
        "task_name": TASK_NAME,
        "labels": {},
        "labels_types": None,
        "args": ["old-run"],
        "kwargs": {},
    }
    await raw_redis.xadd(stream, {b"data": orjson.dumps(old)})
    await raw_redis.xadd(stream, {b"data": b"not json"})  # ignored, not fatal
    consumer = RedisQueue(redis_url, namespace=namespace, concurrency=4)
    taken: list[str] = []

    async def take(execution_id: str) -> None:
        taken.append(execution_id)

    try:
        await consumer.start_consuming(take)
        await eventually(
            lambda: sorted(taken) == ["new-run", "old-run"], within=10, what="both runs taken"
        )
    finally:
        await consumer.close()


async def test_no_more_runs_than_the_concurrency_at_once_and_every_run_taken(
    redis_url: str, namespace: str
) -> None:
    # More messages than slots: the reader waits for a free slot and reads again. A
    # slot freed while the reader was deleting the marks of the previous read must not
    # be missed (the reader stalled for good there once).
    producer = RedisQueue(redis_url, namespace=namespace)
    consumer = RedisQueue(redis_url, namespace=namespace, concurrency=2)
    taken: list[str] = []
    running = 0
    most = 0

    async def take(execution_id: str) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0)
            taken.append(execution_id)
        finally:
            running -= 1

    try:
        for index in range(20):
            await producer.enqueue(f"run-{index}")
        await consumer.start_consuming(take)
        await eventually(lambda: len(taken) == 20, within=20, what="every run taken")
        assert most <= 2
    finally:
        await consumer.close()
        await producer.close()


async def test_enqueue_unless_pending_adds_one_message_per_mark(
    redis_url: str, raw_redis: aioredis.Redis, namespace: str
) -> None:
    producer = RedisQueue(redis_url, namespace=namespace)
    try:
        assert await producer.enqueue_unless_pending("run-1")
        assert not await producer.enqueue_unless_pending("run-1")
        await producer.enqueue("run-1")  # explicit enqueues always go through
        assert await raw_redis.xlen(f"{namespace}:runs") == 2
    finally:
        await producer.close()
