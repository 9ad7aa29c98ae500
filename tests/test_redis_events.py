"""RedisEventBus against the real Redis; two bus instances stand for two processes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis

from ductwork.events.redis import CONTROL_CHANNEL, RedisEventBus, run_channel
from ductwork.models import Event
from tests.support.polling import eventually

pytestmark = pytest.mark.redis

T = TypeVar("T")

HANG_GUARD_SECONDS = 30.0
"""How long a call may take before it counts as hung (a deadline, not a speed check)."""


@pytest.fixture
def client_name() -> str:
    """A client name unique to this test, to find its connections in CLIENT LIST."""
    return f"ductwork-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def publisher(redis_url: str) -> AsyncIterator[RedisEventBus]:
    bus = RedisEventBus(redis_url)
    yield bus
    await bus.close()


@pytest.fixture
async def listener(redis_url: str, client_name: str) -> AsyncIterator[RedisEventBus]:
    bus = RedisEventBus(redis_url, client_name=client_name)
    yield bus
    await bus.close()


def event(seq: int, **data: object) -> Event:
    return Event(seq=seq, type="log", node_id="n1", timestamp=datetime.now(UTC), data=dict(data))


def run_id() -> str:
    return f"test-{uuid.uuid4().hex}"


async def receive(stream: AsyncIterator[T], within: float = 10.0) -> T:
    return await asyncio.wait_for(anext(stream), within)


async def subscribers_in_redis(raw: aioredis.Redis, channel: str) -> int:
    return int(dict(await raw.pubsub_numsub(channel)).get(channel.encode(), 0))


async def my_connections(raw: aioredis.Redis, client_name: str) -> list[dict[str, str]]:
    return [c for c in await raw.client_list() if c.get("name") == client_name]


async def test_events_reach_another_instance_in_order(
    publisher: RedisEventBus, listener: RedisEventBus
) -> None:
    execution_id = run_id()
    async with listener.subscribe(execution_id) as stream:
        sent = [event(seq, text=f"step {seq}") for seq in range(1, 201)]
        for item in sent:
            await publisher.publish(execution_id, item)
        await publisher.publish(run_id(), event(999))  # another run's event must not arrive
        received = [await receive(stream) for _ in sent]
    assert received == sent


async def test_control_messages_reach_every_instance(
    publisher: RedisEventBus, listener: RedisEventBus
) -> None:
    async with (
        listener.subscribe_control() as on_listener,
        publisher.subscribe_control() as on_publisher,
    ):
        tag = uuid.uuid4().hex  # other tests' processes may share the control channel
        messages = [{"action": "cancel", "execution_id": f"{tag}-{i}"} for i in range(5)]
        for message in messages:
            await publisher.publish_control(message)
        for stream in (on_listener, on_publisher):
            got: list[dict[str, str]] = []
            while len(got) < len(messages):
                message = await receive(stream)
                if message.get("execution_id", "").startswith(tag):
                    got.append(message)
            assert got == messages


async def test_subscription_is_live_once_entered(
    publisher: RedisEventBus, listener: RedisEventBus
) -> None:
    for _ in range(20):
        execution_id = run_id()
        async with listener.subscribe(execution_id) as stream:
            await publisher.publish(execution_id, event(1))
            assert (await receive(stream)).seq == 1


async def test_a_thousand_subscribers_share_one_connection(
    publisher: RedisEventBus,
    listener: RedisEventBus,
    raw_redis: aioredis.Redis,
    client_name: str,
) -> None:
    runs = [run_id() for _ in range(10)]
    async with AsyncExitStack() as stack:
        streams = [
            (runs[i % len(runs)], await stack.enter_async_context(listener.subscribe(runs[i % 10])))
            for i in range(1000)
        ]
        connections = await my_connections(raw_redis, client_name)
        assert len(connections) == 1
        assert connections[0]["sub"] == "10"
        assert all(listener.subscriber_count(r) == 100 for r in runs)

        for seq, execution_id in enumerate(runs, start=1):
            await publisher.publish(execution_id, event(seq, run=execution_id))
        received = await asyncio.gather(*(receive(stream) for _, stream in streams))
        assert all(
            got.data["run"] == execution_id
            for (execution_id, _), got in zip(streams, received, strict=True)
        )


async def test_leaving_unsubscribes(
    publisher: RedisEventBus, listener: RedisEventBus, raw_redis: aioredis.Redis
) -> None:
    execution_id = run_id()
    channel = run_channel(execution_id)
    async with listener.subscribe(execution_id):
        async with listener.subscribe(execution_id):
            assert await subscribers_in_redis(raw_redis, channel) == 1
        # One local subscriber left: the channel stays subscribed.
        assert await subscribers_in_redis(raw_redis, channel) == 1
        assert listener.subscriber_count(execution_id) == 1
    assert listener.subscriber_count(execution_id) == 0
    await eventually(lambda: _is_zero(subscribers_in_redis(raw_redis, channel)))

    # And a later subscriber of the same run is live again.
    async with listener.subscribe(execution_id) as stream:
        await publisher.publish(execution_id, event(7))
        assert (await receive(stream)).seq == 7


async def _is_zero(count: Awaitable[int]) -> bool:
    return await count == 0


async def test_churn_on_one_channel_leaves_it_consistent(
    publisher: RedisEventBus, listener: RedisEventBus, raw_redis: aioredis.Redis
) -> None:
    execution_id = run_id()
    channel = run_channel(execution_id)

    async def flap() -> None:
        async with listener.subscribe(execution_id):
            pass

    for seq in range(30):
        await asyncio.gather(*(flap() for _ in range(5)))
        # The last subscriber leaves while its SUBSCRIBE is unacknowledged (cancelled
        # while entering), and a new one arrives at once: the new one must be live.
        entering = asyncio.create_task(flap())
        await asyncio.sleep(0)
        entering.cancel()
        await asyncio.wait([entering])
        async with listener.subscribe(execution_id) as stream:
            assert await subscribers_in_redis(raw_redis, channel) == 1
            await publisher.publish(execution_id, event(seq))
            assert (await receive(stream)).seq == seq

    assert listener.subscriber_count(execution_id) == 0
    await eventually(lambda: _is_zero(subscribers_in_redis(raw_redis, channel)))


async def test_reader_reconnects_after_the_connection_drops(
    publisher: RedisEventBus,
    listener: RedisEventBus,
    raw_redis: aioredis.Redis,
    client_name: str,
) -> None:
    execution_id = run_id()
    async with listener.subscribe(execution_id) as stream, listener.subscribe_control():
        (connection,) = await my_connections(raw_redis, client_name)
        await raw_redis.client_kill_filter(_id=connection["id"])
        # Only a delivered event proves the reader is back. CLIENT LIST can show a
        # subscribed connection too early: redis-py reopens the broken one (and
        # re-subscribes it) before raising, and the reader then closes it to start afresh.
        received: list[Event] = []

        async def consume() -> None:
            async for item in stream:
                received.append(item)

        consumer = asyncio.create_task(consume())
        sent = 0

        async def delivered() -> bool:
            nonlocal sent
            sent += 1
            await publisher.publish(execution_id, event(sent))
            return bool(received)

        try:
            await eventually(delivered, interval=0.05, what="an event after the reconnect")
        finally:
            consumer.cancel()

        async def one_fresh_connection_on_both_channels() -> bool:
            connections = await my_connections(raw_redis, client_name)
            return [(c["id"] != connection["id"], c["sub"]) for c in connections] == [(True, "2")]

        await eventually(one_fresh_connection_on_both_channels)


async def test_unreachable_redis_neither_raises_nor_hangs(closed_redis_url: str) -> None:
    bus = RedisEventBus(closed_redis_url, subscribe_timeout_seconds=0.2)
    try:
        # A hang guard, not a speed check: entering gives up after the 0.2 s
        # subscribe timeout; without one it would wait for Redis for ever.
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            await bus.publish("r1", event(1))
            await bus.publish_control({"action": "cancel", "execution_id": "r1"})
            async with bus.subscribe("r1") as stream:
                with pytest.raises(TimeoutError):
                    await receive(stream, within=0.05)
    finally:
        await bus.close()


async def test_subscribers_on_the_publishing_instance_receive_too(
    publisher: RedisEventBus, raw_redis: aioredis.Redis
) -> None:
    execution_id = run_id()
    async with (
        publisher.subscribe(execution_id) as first,
        publisher.subscribe(execution_id) as second,
    ):
        await publisher.publish(execution_id, event(1))
        assert (await receive(first)).seq == 1
        assert (await receive(second)).seq == 1
    assert CONTROL_CHANNEL == "ductwork:control"
    assert run_channel("abc") == "ductwork:run:abc"


async def test_namespaces_keep_deployments_apart(redis_url: str) -> None:
    blue = RedisEventBus(redis_url, namespace="blue")
    green = RedisEventBus(redis_url, namespace="green")
    first, second, green_only = event(1), event(2), event(7)
    try:
        execution_id = run_id()
        async with (
            green.subscribe(execution_id) as green_stream,
            blue.subscribe(execution_id) as blue_stream,
        ):
            await blue.publish_many(execution_id, [first, second])
            assert [await receive(blue_stream), await receive(blue_stream)] == [first, second]
            await green.publish(execution_id, green_only)
            # Had green heard blue's batch, `first` would come out here.
            assert await receive(green_stream) == green_only
    finally:
        await blue.close()
        await green.close()


async def raw_messages(raw: aioredis.Redis, channel: str) -> AsyncIterator[bytes]:
    """The payloads Redis delivers on `channel`, as they come (subscribed once entered)."""
    pubsub = raw.pubsub()
    await pubsub.subscribe(channel)
    try:
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message is not None:
                yield message["data"]
    finally:
        await pubsub.aclose()


async def test_publishes_within_the_linger_share_one_message_per_run(
    redis_url: str, raw_redis: aioredis.Redis
) -> None:
    bus = RedisEventBus(redis_url, linger_seconds=0.05)
    first, second = run_id(), run_id()
    try:
        async with bus.subscribe(first) as stream:
            messages = raw_messages(raw_redis, run_channel(first))
            # Enter the raw subscription before anything is published.
            pending = asyncio.ensure_future(anext(messages))

            async def both_subscribed() -> bool:
                return await subscribers_in_redis(raw_redis, run_channel(first)) == 2

            await eventually(both_subscribed)
            sent = [event(seq) for seq in range(1, 11)]
            # Ten publishes of one run and one of another, all before the batch leaves.
            await asyncio.gather(
                *(bus.publish(first, item) for item in sent), bus.publish(second, event(1))
            )
            received = [await receive(stream) for _ in sent]
            payload = await asyncio.wait_for(pending, HANG_GUARD_SECONDS)
            await messages.aclose()
    finally:
        await bus.close()
    assert received == sent
    # One message for the ten events, a JSON array in publish order.
    assert payload.startswith(b"[") and payload.count(b'"seq"') == 10


async def test_run_finished_does_not_wait_for_the_linger(
    redis_url: str, listener: RedisEventBus
) -> None:
    # An hour: were run_finished held back, the hang guard would fail the test.
    bus = RedisEventBus(redis_url, linger_seconds=3600)
    execution_id = run_id()
    log_event = event(1)
    finished = Event(
        seq=2, type="run_finished", timestamp=datetime.now(UTC), data={"status": "success"}
    )
    try:
        async with listener.subscribe(execution_id) as stream:
            await bus.publish(execution_id, log_event)  # queued: it lingers
            await bus.publish(execution_id, finished)
            # Both now, the earlier first (the receive deadline is a hang guard).
            received = [
                await receive(stream, HANG_GUARD_SECONDS),
                await receive(stream, HANG_GUARD_SECONDS),
            ]
            assert received == [log_event, finished]
    finally:
        await bus.close()


async def test_close_sends_what_is_still_batched(redis_url: str, listener: RedisEventBus) -> None:
    bus = RedisEventBus(redis_url, linger_seconds=3600)
    execution_id = run_id()
    item = event(1)
    async with listener.subscribe(execution_id) as stream:
        await bus.publish(execution_id, item)  # queued: it lingers
        async with asyncio.timeout(HANG_GUARD_SECONDS):
            await bus.close()
        assert await receive(stream, HANG_GUARD_SECONDS) == item


@pytest.mark.parametrize("turns", [0, 1, 2, 3, 5])
async def test_close_sends_a_batch_it_cut_off_mid_send(
    redis_url: str, raw_redis: aioredis.Redis, turns: int
) -> None:
    # close() cancelled the sender while its PUBLISH was in flight: that batch (here a
    # run's end) was lost, so a sync caller waiting on another process never saw it.
    namespace = f"close-{uuid.uuid4().hex}"
    listener = raw_redis.pubsub()
    try:
        await listener.subscribe(f"{namespace}:run:x")
        await listener.get_message(timeout=1)  # the subscription is confirmed
        bus = RedisEventBus(redis_url, namespace=namespace)
        try:
            started = Event(seq=1, type="run_started", timestamp=datetime.now(UTC), data={})
            await bus.publish("x", started)
            finished = Event(
                seq=2, type="run_finished", timestamp=datetime.now(UTC), data={"status": "success"}
            )
            await bus.publish("x", finished)
            for _ in range(turns):  # the sender takes the batch and awaits the round trip
                await asyncio.sleep(0)
        finally:
            await bus.close()
        got = await listener.get_message(ignore_subscribe_messages=True, timeout=5)
        assert got is not None and b"run_finished" in got["data"]
    finally:
        await listener.aclose()


async def test_close_returns_when_a_send_swallows_the_cancel(redis_url: str) -> None:
    # redis-py now and then returns from a command as if a cancel never came; the
    # sender then waited for its next batch and close() waited for the sender for good.
    bus = RedisEventBus(redis_url)
    sending = asyncio.Event()
    swallowed: list[bool] = []

    async def swallowing_send(batch: dict[str, list[Any]]) -> None:
        sending.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.append(True)

    bus._send = swallowing_send  # type: ignore[method-assign]
    finished = Event(seq=1, type="run_finished", timestamp=datetime.now(UTC), data={})
    await bus.publish("x", finished)
    await asyncio.wait_for(sending.wait(), HANG_GUARD_SECONDS)
    closing = asyncio.ensure_future(bus.close())
    done, _ = await asyncio.wait({closing}, timeout=HANG_GUARD_SECONDS)
    assert swallowed
    assert done, "RedisEventBus.close waited for good on a sender that swallowed its cancel"
