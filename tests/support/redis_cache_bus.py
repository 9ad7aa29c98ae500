"""The real Redis for the Redis cache and event bus tests.

Env `DUCTWORK_TEST_REDIS_URL` (default `redis://127.0.0.1:6379/0`). Tests share
the server with others, so each one works under its own key prefix and deletes
only the keys under it (never FLUSHALL/FLUSHDB). An unreachable Redis fails the
test when env CI=true and skips it otherwise.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis
import redis.asyncio as aioredis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url_for_tests() -> str:
    """The Redis URL the tests use."""
    return os.environ.get("DUCTWORK_TEST_REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture
def closed_redis_url() -> str:
    """A Redis URL on a local port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a reachable Redis; fails on CI, skips elsewhere, when there is none."""
    url = redis_url_for_tests()
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        reason = f"Redis at {url} is unreachable: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    finally:
        client.close()
    return url


@pytest.fixture
def key_prefix(redis_url: str) -> Iterator[str]:
    """A prefix unique to this test; every key under it is deleted afterwards."""
    prefix = f"ductwork-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A plain client for checking what the adapters did."""
    client = aioredis.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def namespace(redis_url: str) -> AsyncIterator[str]:
    """A Redis namespace private to this test; its keys are deleted afterwards."""
    name = f"ductwork-test-{uuid.uuid4().hex}"
    yield name
    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{name}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
