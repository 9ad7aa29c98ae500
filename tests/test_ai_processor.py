"""The ai-processor node, the LLM client and the in-process cache, against a real HTTP stub."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest

from ductwork.cache.memory import MemoryCache
from ductwork.clients.llm import ChatMessage, ChatRequest, LLMClient
from ductwork.nodes.ai_processor import AiProcessorConfig, AiProcessorNode
from ductwork.nodes.base import NodeError, NodeServices, RetryableError
from ductwork.settings import Settings
from tests.support.node_context import FakeNodeContext
from tests.support.openai_stub import OpenAIStub

API_KEY = "test-key"
KEY_PATTERN = re.compile(r"^llm:cache:[0-9a-f]{64}$")
NODE = AiProcessorNode()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_settings(base_url: str, *, api_key: str | None = API_KEY, **extra: Any) -> Settings:
    # The key's env alias is its only accepted name, so it is passed by alias.
    values: dict[str, Any] = {
        "DUCTWORK_LLM_API_KEY": api_key,
        "llm_base_url": base_url,
        "llm_timeout_seconds": 5.0,
        "llm_max_retries": 2,
        "llm_default_model": "stub/default-model",
        **extra,
    }
    return Settings(**values)


def make_services(settings: Settings, cache: MemoryCache | None = None) -> NodeServices:
    # mail, http and sql belong to other node types and are not used here.
    return NodeServices(
        settings=settings,
        cache=MemoryCache() if cache is None else cache,
        llm=LLMClient(settings),
        mail=cast(Any, None),
        http=cast(Any, None),
        sql=cast(Any, None),
    )


async def close_services(services: NodeServices) -> None:
    await services.llm.close()
    await services.cache.close()


def config(**values: Any) -> AiProcessorConfig:
    return AiProcessorConfig.model_validate({"prompt": "Say hello to Ann", **values})


@pytest.fixture(scope="module")
def stub_server() -> Iterator[OpenAIStub]:
    with OpenAIStub(api_key=API_KEY) as running:
        yield running


@pytest.fixture
def stub(stub_server: OpenAIStub) -> OpenAIStub:
    stub_server.reset()
    return stub_server


@pytest.fixture
async def services(stub: OpenAIStub) -> AsyncIterator[NodeServices]:
    built = make_services(make_settings(stub.base_url))
    yield built
    await close_services(built)


# The node against the stub -----------------------------------------------------


async def test_request_reaches_the_server_and_reply_is_the_output(
    stub: OpenAIStub, services: NodeServices
) -> None:
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(
        config(system_prompt="Be brief", model="stub/model-a", temperature=0.2, max_tokens=50),
        ctx,
    )

    assert result.output == "Echo: Say hello to Ann"
    assert result.cached is False
    [received] = stub.requests
    assert received.model == "stub/model-a"
    assert received.temperature == 0.2
    assert received.max_tokens == 50
    assert received.system_prompt == "Be brief"
    assert received.user_message == "Say hello to Ann"
    assert received.messages[0]["role"] == "system"
    assert received.headers["authorization"] == f"Bearer {API_KEY}"
    assert result.meta["model"] == "stub/model-a"
    # Stub tokens are words: 2 + 4 in, 5 out.
    assert result.meta["usage"] == {
        "model": "stub/model-a",
        "prompt_tokens": 6,
        "completion_tokens": 5,
        "total_tokens": 11,
        "cost": None,  # not in DUCTWORK_LLM_PRICES, and the stub reports none
        "calls": 1,
        "cached": False,
    }
    assert result.meta["finish_reason"] == "stop"
    assert KEY_PATTERN.match(result.meta["cache_key"])


async def test_default_model_comes_from_settings(stub: OpenAIStub, services: NodeServices) -> None:
    result = await NODE.run(config(), FakeNodeContext(services=services))
    assert stub.requests[0].model == "stub/default-model"
    assert stub.requests[0].system_prompt is None
    assert stub.requests[0].temperature == 0.7
    assert stub.requests[0].max_tokens == 2048
    assert result.meta["model"] == "stub/default-model"


async def test_identical_second_call_is_served_from_cache(
    stub: OpenAIStub, services: NodeServices
) -> None:
    first = await NODE.run(config(), FakeNodeContext(services=services))
    ctx = FakeNodeContext(services=services)
    second = await NODE.run(config(), ctx)

    assert stub.calls == 1
    assert second.cached is True
    assert second.output == first.output
    assert second.meta["cache_key"] == first.meta["cache_key"]
    # A cached answer used nothing upstream.
    assert second.meta["usage"] == {
        "model": "stub/default-model",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": 0.0,
        "calls": 0,
        "cached": True,
    }
    assert KEY_PATTERN.match(second.meta["cache_key"])
    assert await services.cache.get(second.meta["cache_key"]) is not None
    assert any("cached" in message for _, message in ctx.logs)


async def test_anything_that_changes_the_answer_changes_the_key(
    stub: OpenAIStub, services: NodeServices
) -> None:
    keys = set()
    for variant in (
        config(),
        config(temperature=0.1),
        config(model="stub/other"),
        config(system_prompt="Be brief"),
        config(max_tokens=10),
        config(prompt="Say hello to Bob"),
    ):
        result = await NODE.run(variant, FakeNodeContext(services=services))
        assert result.cached is False
        keys.add(result.meta["cache_key"])
    assert len(keys) == 6
    assert stub.calls == 6


async def test_fifty_concurrent_identical_calls_make_one_upstream_call(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.latency = 0.2
    results = await asyncio.gather(
        *(NODE.run(config(), FakeNodeContext(services=services)) for _ in range(50))
    )
    assert stub.calls == 1
    assert {result.output for result in results} == {"Echo: Say hello to Ann"}
    # Only the caller that started the upstream call is uncached.
    assert sorted(result.cached for result in results) == [False] + [True] * 49


async def test_rate_limit_is_retried_by_the_client(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.fail_next(1, status=429)
    result = await NODE.run(config(), FakeNodeContext(services=services))
    assert result.output == "Echo: Say hello to Ann"
    assert stub.calls == 2


async def test_persistent_server_error_is_retryable_and_not_cached(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.fail_next(10, status=500, message="upstream exploded")
    with pytest.raises(RetryableError) as caught:
        await NODE.run(config(), FakeNodeContext(services=services))
    assert caught.value.retryable is True
    assert "500" in str(caught.value)
    assert "upstream exploded" in str(caught.value)
    assert stub.calls == 3  # the first try and llm_max_retries=2 retries

    stub.reset()
    result = await NODE.run(config(), FakeNodeContext(services=services))
    assert result.cached is False
    assert stub.calls == 1


async def test_wrong_key_is_a_permanent_error(stub: OpenAIStub) -> None:
    services = make_services(make_settings(stub.base_url, api_key="wrong-key"))
    try:
        with pytest.raises(NodeError) as caught:
            await NODE.run(config(), FakeNodeContext(services=services))
    finally:
        await close_services(services)
    assert not isinstance(caught.value, RetryableError)
    assert caught.value.retryable is False
    assert "401" in str(caught.value)
    assert "Invalid API key" in str(caught.value)
    assert stub.calls == 1


async def test_missing_key_names_the_setting(
    stub: OpenAIStub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DUCTWORK_LLM_API_KEY", raising=False)
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    services = make_services(make_settings(stub.base_url, api_key=None))
    try:
        with pytest.raises(NodeError) as caught:
            await NODE.run(config(), FakeNodeContext(services=services))
    finally:
        await close_services(services)
    assert "DUCTWORK_LLM_API_KEY" in str(caught.value)
    assert "OPENROUTER_API_KEY" in str(caught.value)
    assert caught.value.retryable is False
    assert stub.calls == 0


async def test_per_node_timeout_is_retryable(stub: OpenAIStub) -> None:
    # The reply comes after 2 s: well inside the configured 5 s, so only the node's own
    # 0.1 s timeout can make this call fail.
    stub.latency = 2.0
    services = make_services(make_settings(stub.base_url, llm_max_retries=0))
    try:
        with pytest.raises(RetryableError, match="timed out"):
            await NODE.run(config(timeout_seconds=0.1), FakeNodeContext(services=services))
    finally:
        await close_services(services)
    assert stub.calls == 1, "a timed-out call is retried by the engine, not inside the node"


async def test_stream_emits_tokens_in_order(stub: OpenAIStub, services: NodeServices) -> None:
    stub.reply = lambda request: "one two three four five"
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(config(stream=True), ctx)

    assert stub.requests[0].stream is True
    assert ctx.tokens == ["one ", "two ", "three ", "four ", "five"]
    assert "".join(ctx.tokens) == result.output == "one two three four five"
    assert result.meta["usage"]["completion_tokens"] == 5
    assert result.meta["finish_reason"] == "stop"

    # A cached reply arrives as one token.
    again = FakeNodeContext(services=services)
    cached = await NODE.run(config(stream=True), again)
    assert cached.cached is True
    assert again.tokens == ["one two three four five"]
    assert stub.calls == 1


async def test_cache_false_bypasses_the_cache(stub: OpenAIStub, services: NodeServices) -> None:
    first = await NODE.run(config(cache=False), FakeNodeContext(services=services))
    second = await NODE.run(config(cache=False), FakeNodeContext(services=services))
    assert (first.cached, second.cached) == (False, False)
    assert stub.calls == 2
    assert await services.cache.get(first.meta["cache_key"]) is None


async def test_cache_ttl_override_expires_the_entry(stub: OpenAIStub) -> None:
    clock = FakeClock()
    services = make_services(make_settings(stub.base_url), MemoryCache(clock=clock))
    try:
        await NODE.run(config(cache_ttl_seconds=10), FakeNodeContext(services=services))
        clock.now += 9
        assert (
            await NODE.run(config(cache_ttl_seconds=10), FakeNodeContext(services=services))
        ).cached
        clock.now += 2
        again = await NODE.run(config(cache_ttl_seconds=10), FakeNodeContext(services=services))
    finally:
        await close_services(services)
    assert again.cached is False
    assert stub.calls == 2


async def test_unreadable_cache_entry_is_replaced(stub: OpenAIStub, services: NodeServices) -> None:
    key = ChatRequest(
        model="stub/default-model",
        messages=[ChatMessage(role="user", content="Say hello to Ann")],
    ).cache_key()
    await services.cache.set(key, b'{"not": "a response"}', 60)
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(config(), ctx)
    assert result.meta["cache_key"] == key
    assert result.output == "Echo: Say hello to Ann"
    assert result.cached is False
    assert ctx.logs[0][0] == "warning"
    assert (await NODE.run(config(), FakeNodeContext(services=services))).cached is True
    assert stub.calls == 1


async def test_scripted_replies_come_first(stub: OpenAIStub, services: NodeServices) -> None:
    stub.queue_replies("first", "second")
    outputs = [
        (await NODE.run(config(prompt=f"p{i}"), FakeNodeContext(services=services))).output
        for i in range(3)
    ]
    assert outputs == ["first", "second", "Echo: p2"]


def test_config_bounds_and_schema() -> None:
    with pytest.raises(ValueError):
        AiProcessorConfig.model_validate({"prompt": "x", "temperature": 2.5})
    with pytest.raises(ValueError):
        AiProcessorConfig.model_validate({"prompt": "x", "max_tokens": 0})
    with pytest.raises(ValueError):
        AiProcessorConfig.model_validate({"prompt": "x", "bogus": 1})
    with pytest.raises(ValueError):
        AiProcessorConfig.model_validate({})
    with pytest.raises(ValueError, match="prompt"):
        AiProcessorConfig.model_validate({"temperature": 1})
    schema = NODE.json_schema()
    assert "prompt" in schema["properties"] and "messages" in schema["properties"]
    assert AiProcessorNode.type_name == "ai-processor"


# ChatRequest keys ----------------------------------------------------------------


def test_cache_key_is_sha256_of_canonical_request() -> None:
    import hashlib

    request = ChatRequest(
        model="m", messages=[ChatMessage(role="user", content="hi")], temperature=1
    )
    canonical = (
        b'{"max_tokens":2048,"messages":[{"content":"hi","role":"user"}],'
        b'"model":"m","temperature":1.0}'
    )
    assert request.canonical_json() == canonical
    assert request.cache_key() == "llm:cache:" + hashlib.sha256(canonical).hexdigest()
    same = ChatRequest.model_validate(
        {"temperature": 1.0, "messages": [{"content": "hi", "role": "user"}], "model": "m"}
    )
    assert same.cache_key() == request.cache_key()
    assert request.model_copy(update={"seed": 7}).cache_key() != request.cache_key()


# MemoryCache ------------------------------------------------------------------------


async def test_memory_cache_entries_expire() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    await cache.set("k", b"v", 5)
    clock.now += 4.999
    assert await cache.get("k") == b"v"
    clock.now += 0.001
    assert await cache.get("k") is None
    assert cache.size == 0
    await cache.set("zero", b"v", 0)
    assert await cache.get("zero") is None


async def test_memory_cache_evicts_least_recently_used() -> None:
    cache = MemoryCache(max_entries=2)
    await cache.set("a", b"1", 60)
    await cache.set("b", b"2", 60)
    assert await cache.get("a") == b"1"  # a is now more recent than b
    await cache.set("c", b"3", 60)
    assert cache.size == 2
    assert await cache.get("b") is None
    assert await cache.get("a") == b"1"
    assert await cache.get("c") == b"3"


async def test_memory_cache_single_flight_shares_one_computation() -> None:
    cache = MemoryCache()
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def compute() -> bytes:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        return b"value"

    tasks = [asyncio.create_task(cache.get_or_compute("k", compute, 60)) for _ in range(20)]
    await started.wait()
    release.set()
    results = await asyncio.gather(*tasks)
    assert runs == 1
    assert results == [(b"value", False)] + [(b"value", True)] * 19
    assert await cache.get_or_compute("k", compute, 60) == (b"value", True)


async def test_memory_cache_failure_reaches_every_waiter_and_is_not_cached() -> None:
    cache = MemoryCache()
    started = asyncio.Event()
    release = asyncio.Event()
    runs = 0

    async def failing() -> bytes:
        nonlocal runs
        runs += 1
        started.set()
        await release.wait()
        raise RuntimeError("upstream down")

    tasks = [asyncio.create_task(cache.get_or_compute("k", failing, 60)) for _ in range(5)]
    await started.wait()
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert runs == 1
    assert all(isinstance(r, RuntimeError) and str(r) == "upstream down" for r in results)
    assert await cache.get("k") is None

    async def working() -> bytes:
        return b"ok"

    assert await cache.get_or_compute("k", working, 60) == (b"ok", False)


async def test_memory_cache_cancelled_waiter_does_not_cancel_the_computation() -> None:
    cache = MemoryCache()
    started = asyncio.Event()
    release = asyncio.Event()

    async def compute() -> bytes:
        started.set()
        await release.wait()
        return b"value"

    leader = asyncio.create_task(cache.get_or_compute("k", compute, 60))
    follower = asyncio.create_task(cache.get_or_compute("k", compute, 60))
    await started.wait()
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    release.set()
    assert await follower == (b"value", True)
    assert await cache.get("k") == b"value"


# Hot path (its speed is measured by bench/nodes.py) ---------------------------------


async def test_repeated_cached_runs_never_reach_the_upstream(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.reply = lambda request: "word " * 200
    first = await NODE.run(config(), FakeNodeContext(services=services))
    ctx = FakeNodeContext(services=services)
    node_config = config()
    results = [await NODE.run(node_config, ctx) for _ in range(100)]
    assert all(result.cached for result in results)
    assert all(result.output == first.output for result in results)
    assert stub.calls == 1
