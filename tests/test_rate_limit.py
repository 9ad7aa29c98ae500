"""Rate limits: `RateLimiter` in memory and on the real Redis, and the execute rule over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from limits import parse

from ductwork.security import ratelimit
from ductwork.security.ratelimit import RateLimiter, UnknownRule, redis_storage_url
from ductwork.settings import Settings
from tests.support.live_server import LiveServer
from tests.support.openai_stub import OpenAIStub
from tests.support.polling import eventually


def settings_for(tmp_path: Path, **overrides: object) -> Settings:
    return Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def memory_limiter(tmp_path: Path) -> AsyncIterator[RateLimiter]:
    limiter = RateLimiter(
        settings_for(tmp_path, login_rate_limit="3/minute", execute_rate_limit="5/second")
    )
    yield limiter
    await limiter.close()


async def test_memory_allows_up_to_the_rate_then_says_when(memory_limiter: RateLimiter) -> None:
    assert [await memory_limiter.hit("login", "10.0.0.1") for _ in range(3)] == [None] * 3
    retry_after = await memory_limiter.hit("login", "10.0.0.1")
    assert retry_after is not None and 1 <= retry_after <= 60
    # Another key, and another rule for the same key, are counted apart.
    assert await memory_limiter.hit("login", "10.0.0.2") is None
    assert await memory_limiter.hit("execute", "10.0.0.1") is None
    # clear forgets the key (a successful login).
    await memory_limiter.clear("login", "10.0.0.1")
    assert await memory_limiter.hit("login", "10.0.0.1") is None


async def test_the_window_moves(memory_limiter: RateLimiter) -> None:
    for _ in range(5):
        assert await memory_limiter.hit("execute", "key:a") is None
    assert await memory_limiter.hit("execute", "key:a") == 1.0

    async def allowed_again() -> bool:
        return await memory_limiter.hit("execute", "key:a") is None

    await eventually(allowed_again, within=5, interval=0.1, what="the 1 s window to move on")


async def test_memory_counts_without_threads_or_tasks(
    memory_limiter: RateLimiter, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `limits`' asyncio memory storage ran a clean-up task after every hit that moved a
    # bisect onto a thread: a thread hop on every execute call.
    hops: list[object] = []

    async def to_thread(*args: object, **kwargs: object) -> object:
        hops.append(args)
        raise AssertionError("the in-memory limiter must not use threads")

    monkeypatch.setattr(asyncio, "to_thread", to_thread)
    tasks = len(asyncio.all_tasks())
    for _ in range(5):
        assert await memory_limiter.hit("execute", "key:t") is None
    for _ in range(3):
        await asyncio.sleep(0)
    assert hops == [] and len(asyncio.all_tasks()) == tasks
    assert await memory_limiter.hit("execute", "key:t") == 1.0
    assert await memory_limiter.peek("execute", "key:t") == 1.0


def test_memory_window_moves_and_forgets_idle_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    windows = ratelimit.MemoryWindows()
    rate = parse("3/minute")
    assert [windows.hit(rate, "login", "a") for _ in range(2)] == [None] * 2  # at 0 s
    now[0] += 20
    assert windows.hit(rate, "login", "a") is None  # at 20 s
    now[0] += 10
    assert windows.hit(rate, "login", "a") == 30.0  # the hits at 0 s leave the window at 60 s
    assert windows.peek(rate, "login", "a") == 30.0
    now[0] += 30
    # A moving window: the hits at 0 s are gone, the one at 20 s still counts.
    assert [windows.hit(rate, "login", "a") for _ in range(2)] == [None] * 2
    assert windows.hit(rate, "login", "a") == 20.0
    # Keys whose windows have emptied are dropped once the key count doubles.
    for n in range(windows.SWEEP_MIN_KEYS):
        windows.hit(rate, "login", f"client-{n}")
    now[0] += 61
    for n in range(windows.SWEEP_MIN_KEYS):
        windows.hit(rate, "login", f"other-{n}")
    assert windows.keys <= windows.SWEEP_MIN_KEYS + 1
    windows.clear(rate, "login", "other-0")
    assert windows.peek(rate, "login", "other-0") is None


async def test_unknown_rules_and_bad_rates_are_errors(
    memory_limiter: RateLimiter, tmp_path: Path
) -> None:
    with pytest.raises(UnknownRule):
        await memory_limiter.hit("nope", "x")
    with pytest.raises(ValueError, match="DUCTWORK_EXECUTE_RATE_LIMIT 'often'"):
        RateLimiter(settings_for(tmp_path, execute_rate_limit="often"))


def test_redis_url_gets_the_async_scheme() -> None:
    assert redis_storage_url("redis://h:6379/0") == "async+redis://h:6379/0"
    assert redis_storage_url("rediss://h/1") == "async+rediss://h/1"
    assert redis_storage_url("async+redis://h") == "async+redis://h"


# Real Redis: two processes' limiters share the counts ------------------------------------------


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    """A Redis namespace unique to this test; its keys are deleted afterwards."""
    name = f"ductwork-test-{uuid.uuid4().hex}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{name}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.mark.redis
async def test_redis_counts_are_shared_between_processes(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    settings = settings_for(
        tmp_path,
        redis_url=redis_url,
        redis_namespace=namespace,
        login_rate_limit="4/minute",
    )
    first, second = RateLimiter(settings), RateLimiter(settings)
    try:
        assert await first.hit("login", "10.0.0.9") is None
        assert await second.hit("login", "10.0.0.9") is None
        assert await first.hit("login", "10.0.0.9") is None
        assert await second.hit("login", "10.0.0.9") is None
        retry_after = await first.hit("login", "10.0.0.9")
        assert retry_after is not None and 1 <= retry_after <= 60
        assert await second.hit("login", "10.0.0.9") is not None
        # The counts live in Redis under ductwork's namespace.
        client = redis.Redis.from_url(redis_url)
        try:
            keys = [key.decode() for key in client.scan_iter(match=f"{namespace}*")]
        finally:
            client.close()
        assert keys and all("10.0.0.9" in key for key in keys)
        # A clear on one process is seen by the other.
        await second.clear("login", "10.0.0.9")
        assert await first.hit("login", "10.0.0.9") is None
    finally:
        await first.close()
        await second.close()


@pytest.mark.redis
async def test_another_namespace_counts_apart(
    tmp_path: Path, redis_url: str, namespace: str
) -> None:
    one = RateLimiter(
        settings_for(
            tmp_path, redis_url=redis_url, redis_namespace=namespace, execute_rate_limit="1/minute"
        )
    )
    other = RateLimiter(
        settings_for(
            tmp_path,
            redis_url=redis_url,
            redis_namespace=f"{namespace}-b",
            execute_rate_limit="1/minute",
        )
    )
    try:
        assert await one.hit("execute", "key:k") is None
        assert await one.hit("execute", "key:k") is not None
        assert await other.hit("execute", "key:k") is None
    finally:
        await one.close()
        await other.close()


# The execute rule over HTTP ---------------------------------------------------------------------


@pytest.fixture
def limited(full_settings: Settings) -> Iterator[httpx.Client]:
    settings = full_settings.model_copy(
        # Without a key (loopback): the calls are counted per client address.
        update={"auth": "disabled", "execute_rate_limit": "3/minute"}
    )
    with LiveServer(settings) as live, httpx.Client(base_url=live.url, timeout=30) as http:
        yield http


def test_execute_retry_and_generate_share_the_execute_rule(
    limited: httpx.Client, llm: OpenAIStub
) -> None:
    body = {
        "name": "rate",
        "nodes": [
            {"id": "start", "type": "start", "config": {}},
            {"id": "end", "type": "end", "config": {}},
        ],
        "edges": [{"from": "start", "to": "end"}],
    }
    workflow_id = limited.post("/workflows/", json=body).json()["id"]
    first = limited.post(f"/workflows/{workflow_id}/execute", json={})
    assert first.status_code == 200, first.text
    # A retry of a run that cannot be retried is refused, but still counted.
    retry = limited.post(f"/workflows/executions/{first.json()['execution_id']}/retry")
    assert retry.status_code == 409
    assert limited.post(f"/workflows/{workflow_id}/execute").status_code == 200

    refused = limited.post(f"/workflows/{workflow_id}/execute", json={})
    assert refused.status_code == 429
    assert "DUCTWORK_EXECUTE_RATE_LIMIT" in refused.json()["detail"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    generate = limited.post("/ai/workflows/generate", json={"prompt": "anything"})
    assert generate.status_code == 429 and "retry-after" in generate.headers
    assert llm.calls == 0
    # Other routes are not limited.
    assert limited.get(f"/workflows/{workflow_id}").status_code == 200
    assert limited.post("/workflows/", json=body).status_code == 201
    runs = limited.get(f"/workflows/{workflow_id}/executions").json()
    assert len(runs) == 2
