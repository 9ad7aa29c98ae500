"""Per-provider LLM rate limits: calls wait their turn, in-process and shared through Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from ductwork.cache.memory import MemoryCache
from ductwork.clients.llm import LLMClient
from ductwork.clients.llm_limits import (
    MemoryLlmLimiter,
    RedisLlmLimiter,
    build_llm_limiter,
    estimate_tokens,
    provider_host,
)
from ductwork.nodes.ai_processor import AiProcessorConfig, AiProcessorNode
from ductwork.nodes.base import NodeServices
from ductwork.settings import LlmRateLimit, Settings
from tests.support.node_context import FakeNodeContext
from tests.support.openai_stub import OpenAIStub
from tests.test_ai_processor import API_KEY, make_settings

URL = "https://openrouter.ai/api/v1"


class FrozenClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limits(requests: int | None = None, tokens: int | None = None) -> dict[str, LlmRateLimit]:
    return {"openrouter.ai": LlmRateLimit(requests_per_minute=requests, tokens_per_minute=tokens)}


def test_hosts_and_estimates() -> None:
    assert provider_host("https://OpenRouter.ai/api/v1") == "openrouter.ai"
    assert estimate_tokens(400, 50) == 151
    limiter = MemoryLlmLimiter(
        {"127.0.0.1:8080": LlmRateLimit(requests_per_minute=1), "127.0.0.1": LlmRateLimit()}
    )
    assert limiter.limits_for("http://127.0.0.1:8080/v1") is not None
    assert limiter.limits_for("http://127.0.0.1:8080/v1")[0] == "127.0.0.1:8080"  # type: ignore[index]
    assert limiter.limits_for("http://127.0.0.1:9/v1")[0] == "127.0.0.1"  # type: ignore[index]
    assert limiter.limits_for("https://api.openai.com/v1") is None
    assert isinstance(build_llm_limiter(Settings()), MemoryLlmLimiter)
    assert isinstance(build_llm_limiter(Settings(redis_url="redis://x:1/0")), RedisLlmLimiter)


async def test_requests_past_the_limit_are_scheduled_a_window_later() -> None:
    clock = FrozenClock()
    limiter = MemoryLlmLimiter(limits(requests=2), clock, window_seconds=60)
    starts = [(await limiter._reserve("openrouter.ai", 0, 2, None)).start for _ in range(5)]
    assert [start - clock.now for start in starts] == [0, 0, 60, 60, 120]
    clock.now += 200  # everything reserved so far has left the window
    assert (await limiter._reserve("openrouter.ai", 0, 2, None)).waited_seconds == 0


async def test_calls_wait_instead_of_failing() -> None:
    limiter = MemoryLlmLimiter(limits(requests=2), window_seconds=0.2)
    waits: list[float] = []
    reservations = await asyncio.gather(*(limiter.acquire(URL, 10, waits.append) for _ in range(5)))
    assert all(reservation is not None for reservation in reservations)
    # Two went at once, the others were told how long they had to wait, and waited.
    assert len(waits) == 3 and min(waits) > 0.1
    assert await limiter.acquire("https://elsewhere.example/v1", 10) is None


async def test_tokens_are_reserved_then_corrected_to_the_usage() -> None:
    clock = FrozenClock()
    limiter = MemoryLlmLimiter(limits(tokens=100), clock)
    first = await limiter.acquire(URL, 60)
    assert first is not None and first.waited_seconds == 0
    # 60 + 60 > 100: another such call would wait a minute...
    probe = await limiter._reserve("openrouter.ai", 60, None, 100)
    assert probe.waited_seconds == 60
    await limiter._release(probe)
    # ...but the first used only 10 tokens, so after the correction it goes at once.
    await limiter.settle(first, 10)
    second = await limiter.acquire(URL, 60)
    assert second is not None and second.waited_seconds == 0
    # A call bigger than a whole minute's budget counts as the whole budget, not forever.
    clock.now += 61
    huge = await limiter.acquire(URL, 5_000)
    assert huge is not None and huge.tokens == 100 and huge.waited_seconds == 0


async def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    clock = FrozenClock()
    limiter = MemoryLlmLimiter(limits(requests=1), clock, window_seconds=60)
    await limiter.acquire(URL, 1)
    waiter = asyncio.create_task(limiter.acquire(URL, 1))
    await asyncio.sleep(0)  # it has reserved the next window and sleeps
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    # The next caller gets the slot the cancelled one had, not the one after it.
    assert (await limiter._reserve("openrouter.ai", 0, 1, None)).waited_seconds == 60


# The node, through the LLM client, against the stub ----------------------------------------


@pytest.fixture(scope="module")
def stub_server() -> Iterator[OpenAIStub]:
    with OpenAIStub(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def stub(stub_server: OpenAIStub) -> OpenAIStub:
    stub_server.reset()
    return stub_server


async def test_ai_nodes_past_the_limit_wait_and_all_succeed(stub: OpenAIStub) -> None:
    settings = make_settings(stub.base_url)
    limiter = MemoryLlmLimiter(
        {"127.0.0.1": LlmRateLimit(requests_per_minute=2)}, window_seconds=0.2
    )
    services = NodeServices(
        settings=settings,
        cache=MemoryCache(),
        llm=LLMClient(settings, limiter),
        mail=None,  # type: ignore[arg-type]
        http=None,  # type: ignore[arg-type]
        sql=None,  # type: ignore[arg-type]
    )
    node = AiProcessorNode()
    contexts = [FakeNodeContext(services=services) for _ in range(5)]
    try:
        results = await asyncio.gather(
            *(
                node.run(AiProcessorConfig(prompt=f"p{i}", cache=False), ctx)
                for i, ctx in enumerate(contexts)
            )
        )
    finally:
        await services.llm.close()
    assert [result.output for result in results] == [f"Echo: p{i}" for i in range(5)]
    assert stub.calls == 5
    waited = [ctx for ctx in contexts if any("rate limit" in line for _, line in ctx.logs)]
    assert len(waited) == 3


# Redis: one budget for every process ----------------------------------------------------------


@pytest.fixture
async def shared(redis_url: str) -> AsyncIterator[tuple[RedisLlmLimiter, RedisLlmLimiter]]:
    namespace = f"test-{uuid.uuid4().hex}"
    kwargs: dict[str, Any] = {"namespace": namespace, "window_seconds": 60}
    one = RedisLlmLimiter(limits(requests=2, tokens=1000), redis_url, **kwargs)
    two = RedisLlmLimiter(limits(requests=2, tokens=1000), redis_url, **kwargs)
    yield one, two
    await one.close()
    await two.close()


@pytest.mark.redis
async def test_two_redis_limiters_share_one_budget(
    shared: tuple[RedisLlmLimiter, RedisLlmLimiter],
) -> None:
    one, two = shared
    first = await one.acquire(URL, 100)
    second = await two.acquire(URL, 100)
    assert first is not None and second is not None
    assert (first.waited_seconds, second.waited_seconds) == (0, 0)
    # Both processes' calls are in one log: the third waits for the first to leave it.
    third = await one._reserve("openrouter.ai", 100, 2, 1000)
    assert third is not None and 59 < third.start - first.start <= 60.01
    await one._release(third)
    fourth = await two._reserve("openrouter.ai", 100, 2, 1000)
    assert fourth is not None and 59 < fourth.start - first.start <= 60.01


@pytest.mark.redis
async def test_redis_tokens_are_corrected_after_the_call(
    shared: tuple[RedisLlmLimiter, RedisLlmLimiter],
) -> None:
    one, two = shared
    big = await one.acquire(URL, 900)
    assert big is not None and big.waited_seconds == 0
    waiting = await two._reserve("openrouter.ai", 200, None, 1000)
    assert waiting is not None and waiting.waited_seconds > 59
    await two._release(waiting)
    await one.settle(big, 50)
    now = await two._reserve("openrouter.ai", 200, None, 1000)
    assert now is not None and now.waited_seconds == 0


@pytest.mark.redis
async def test_redis_down_lets_calls_through(closed_redis_url: str) -> None:
    limiter = RedisLlmLimiter(limits(requests=1), closed_redis_url, namespace="down")
    try:
        assert await limiter.acquire(URL, 10) is None
        assert await limiter.acquire(URL, 10) is None
    finally:
        await limiter.close()
