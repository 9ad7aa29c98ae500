"""The grown-up ai-processor: structured output, messages, params, fallbacks, usage, budgets.

Against the real OpenAI-compatible stub (tests/support/openai_stub.py) and, for the
structured-output-into-a-condition case, a real embedded engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from ductwork.clients.llm_limits import MemoryLlmLimiter
from ductwork.engine.graph import validate
from ductwork.models import NodeStatus, RunStatus, WorkflowDefinition
from ductwork.nodes.ai_processor import AiProcessorConfig, AiProcessorNode
from ductwork.nodes.base import NodeError, NodeServices, RetryableError
from ductwork.nodes.registry import REGISTRY
from ductwork.settings import ModelPrice
from ductwork.usage import CallUsage, RunUsage
from tests.support.engine import definition, embedded
from tests.support.node_context import FakeNodeContext
from tests.support.openai_stub import OpenAIStub
from tests.test_ai_processor import API_KEY, close_services, make_services, make_settings

NODE = AiProcessorNode()

SENTIMENT = {
    "type": "json_schema",
    "json_schema": {
        "name": "sentiment",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "sentiment": {"enum": ["positive", "negative", "neutral"]},
                "score": {"type": "number"},
            },
            "required": ["sentiment", "score"],
            "additionalProperties": False,
        },
    },
}


def config(**values: Any) -> AiProcessorConfig:
    return AiProcessorConfig.model_validate({"prompt": "Rate: the food was cold", **values})


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
    built = make_services(
        make_settings(
            stub.base_url,
            llm_max_retries=0,
            llm_prices={"stub/priced": ModelPrice(input=1.0, output=2.0)},
        )
    )
    yield built
    await close_services(built)


# Structured output ----------------------------------------------------------------


async def test_json_schema_answer_is_parsed_and_the_format_reaches_the_provider(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.queue_replies('```json\n{"sentiment": "negative", "score": 0.9}\n```')
    result = await NODE.run(config(response_format=SENTIMENT), FakeNodeContext(services=services))

    assert result.output == {"sentiment": "negative", "score": 0.9}
    assert result.meta["repaired"] is False
    [request] = stub.requests
    assert request.response_format == SENTIMENT


async def test_invalid_json_gets_one_repair_call(stub: OpenAIStub, services: NodeServices) -> None:
    stub.queue_replies("Sure! The sentiment is negative.", '{"sentiment": "negative", "score": 1}')
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(config(response_format=SENTIMENT), ctx)

    assert stub.calls == 2
    assert result.output == {"sentiment": "negative", "score": 1}
    assert result.meta["repaired"] is True
    assert result.meta["usage"]["calls"] == 2
    repair = stub.requests[1].messages
    # The original conversation, the bad answer, and a message naming the problem.
    assert repair[:-2] == stub.requests[0].messages
    assert repair[-2] == {"role": "assistant", "content": "Sure! The sentiment is negative."}
    assert repair[-1]["role"] == "user" and "not valid JSON" in repair[-1]["content"]
    assert len(ctx.budget_checks) == 2


async def test_schema_violation_is_repaired_with_the_violation_named(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.queue_replies(
        '{"sentiment": "furious", "score": 1}', '{"sentiment": "negative", "score": 1}'
    )
    result = await NODE.run(config(response_format=SENTIMENT), FakeNodeContext(services=services))
    assert result.output["sentiment"] == "negative"
    assert "/sentiment" in stub.requests[1].messages[-1]["content"]
    assert "furious" in stub.requests[1].messages[-1]["content"]


async def test_still_invalid_after_the_repair_is_a_node_error(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.queue_replies('{"sentiment": "furious"}', "still not it")
    with pytest.raises(
        NodeError, match="even after a repair request: the answer is not valid JSON"
    ):
        await NODE.run(config(response_format=SENTIMENT), FakeNodeContext(services=services))
    assert stub.calls == 2


async def test_json_object_needs_an_object(stub: OpenAIStub, services: NodeServices) -> None:
    stub.queue_replies("[1, 2]", '{"items": [1, 2]}')
    result = await NODE.run(
        config(response_format={"type": "json_object"}), FakeNodeContext(services=services)
    )
    assert result.output == {"items": [1, 2]}
    assert "not an object" in stub.requests[1].messages[-1]["content"]


async def test_without_response_format_the_output_stays_the_text(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.queue_replies('{"a": 1}')
    result = await NODE.run(config(), FakeNodeContext(services=services))
    assert result.output == '{"a": 1}'
    assert "repaired" not in result.meta
    assert stub.requests[0].response_format is None


def node_issues(config: dict[str, Any]) -> list[tuple[str, str]]:
    workflow = WorkflowDefinition.model_validate(
        {
            "name": "t",
            "nodes": [{"id": "ai", "type": "ai-processor", "config": config}],
            "edges": [],
        }
    )
    return [(issue.field, issue.message) for issue in validate(workflow, REGISTRY)]


def test_a_broken_schema_is_refused_at_save_time_naming_the_field() -> None:
    broken = {
        "type": "json_schema",
        "json_schema": {
            "name": "x",
            "schema": {"type": "object", "properties": {"a": {"type": 5}}},
        },
    }
    [(field, message)] = node_issues({"prompt": "p", "response_format": broken})
    assert field == "config.response_format.json_schema.schema"
    assert "not a valid JSON Schema" in message and "properties/a/type" in message

    [(field, message)] = node_issues({"prompt": "p", "response_format": {"type": "json_schema"}})
    assert field == "config.response_format"
    assert "json_schema" in message
    [(field, _)] = node_issues({"prompt": "p", "response_format": {"type": "yaml"}})
    assert field == "config.response_format.type"
    [(field, message)] = node_issues({"prompt": "p", "stop": ["a", "b", "c", "d", "e"]})
    assert "at most 4" in message
    assert node_issues({"prompt": "p", "response_format": SENTIMENT}) == []


# Messages and parameters ------------------------------------------------------------


async def test_messages_and_parameters_reach_the_provider(
    stub: OpenAIStub, services: NodeServices
) -> None:
    messages = [
        {"role": "user", "content": "My name is Ann."},
        {"role": "assistant", "content": "Hello Ann."},
    ]
    await NODE.run(
        config(
            system_prompt="Be brief",
            messages=messages,
            prompt="What is my name?",
            temperature=0.1,
            max_tokens=30,
            stop="END",
        ),
        FakeNodeContext(services=services),
    )
    [request] = stub.requests
    assert request.messages == [
        {"role": "system", "content": "Be brief"},
        *messages,
        {"role": "user", "content": "What is my name?"},
    ]
    assert (request.temperature, request.max_tokens, request.stop) == (0.1, 30, ["END"])


async def test_messages_alone_are_enough(stub: OpenAIStub, services: NodeServices) -> None:
    only = AiProcessorConfig.model_validate(
        {"messages": [{"role": "user", "content": "hi"}], "stop": ["x", "y"]}
    )
    result = await NODE.run(only, FakeNodeContext(services=services))
    assert result.output == "Echo: hi"
    assert stub.requests[0].stop == ["x", "y"]


# Fallbacks ----------------------------------------------------------------------------


async def test_fallback_model_answers_when_the_first_fails_with_500(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.fail_model("stub/primary", status=500, message="primary is down")
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(config(model="stub/primary", fallback_models=["stub/backup"]), ctx)
    assert [request.model for request in stub.requests] == ["stub/primary", "stub/backup"]
    assert result.meta["model"] == "stub/backup"
    [failure] = result.meta["fallback_failures"]
    assert failure["model"] == "stub/primary" and "primary is down" in failure["error"]
    assert result.meta["usage"]["calls"] == 1  # the failed call used nothing
    # The answer is cached under the backup's request (failures are not cached): a
    # second run tries the primary again, then gets the backup's answer from the cache.
    again = await NODE.run(config(model="stub/primary", fallback_models=["stub/backup"]), ctx)
    assert stub.calls == 3 and again.cached is True
    assert again.meta["cache_key"] == result.meta["cache_key"]
    assert await services.cache.get(result.meta["cache_key"]) is not None


async def test_a_refused_request_does_not_fall_back(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.fail_model("stub/primary", status=400, message="bad request")
    with pytest.raises(NodeError, match="400") as caught:
        await NODE.run(
            config(model="stub/primary", fallback_models=["stub/backup"]),
            FakeNodeContext(services=services),
        )
    assert caught.value.retryable is False
    assert stub.calls == 1


async def test_every_model_failing_is_named_in_the_error(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.fail_model("stub/primary", status=503)
    stub.fail_model("stub/backup", status=404, message="no such model")
    with pytest.raises(NodeError) as caught:
        await NODE.run(
            config(model="stub/primary", fallback_models=["stub/backup"]),
            FakeNodeContext(services=services),
        )
    assert "stub/primary" in str(caught.value) and "no such model" in str(caught.value)
    assert not isinstance(caught.value, RetryableError) and caught.value.retryable is False
    assert stub.calls == 2


# Usage, cost and budgets -----------------------------------------------------------------


async def test_usage_is_priced_from_the_table(stub: OpenAIStub, services: NodeServices) -> None:
    stub.reply = lambda request: "one two three four"
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(config(model="stub/priced", max_tokens=100), ctx)
    usage = result.meta["usage"]
    # Stub tokens are words: 5 in, 4 out, at 1.0 and 2.0 per million.
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (5, 4)
    assert usage["cost"] == pytest.approx((5 * 1.0 + 4 * 2.0) / 1_000_000)
    # The budget was asked before the call: ~prompt chars / 4 in, max_tokens out.
    prompt_chars = len("Rate: the food was cold")
    assert ctx.budget_checks == [pytest.approx((prompt_chars // 4 + 100 * 2.0) / 1_000_000)]

    unpriced = FakeNodeContext(services=services)
    await NODE.run(config(model="stub/unpriced"), unpriced)
    assert unpriced.budget_checks == [0.0]


async def test_reported_cost_wins_and_repairs_add_up(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.usage_cost = 0.25
    stub.queue_replies("oops", '{"sentiment": "neutral", "score": 0}')
    result = await NODE.run(
        config(model="stub/priced", response_format=SENTIMENT), FakeNodeContext(services=services)
    )
    assert result.meta["usage"]["cost"] == pytest.approx(0.5)
    assert result.meta["usage"]["calls"] == 2


async def test_calls_made_before_a_failure_are_reported_with_the_error(
    stub: OpenAIStub, services: NodeServices
) -> None:
    stub.usage_cost = 0.25
    stub.queue_replies('{"sentiment": "furious"}', "still not it")
    with pytest.raises(NodeError, match="even after a repair request") as failed:
        await NODE.run(
            config(model="stub/priced", response_format=SENTIMENT),
            FakeNodeContext(services=services),
        )
    assert failed.value.usage is not None
    assert failed.value.usage["calls"] == 2
    assert failed.value.usage["cost"] == pytest.approx(0.5)
    # A call the provider refused billed nothing: nothing to report.
    stub.fail_next(status=400)
    with pytest.raises(NodeError) as refused:
        await NODE.run(config(model="stub/priced", cache=False), FakeNodeContext(services=services))
    assert refused.value.usage is None


async def test_a_run_counts_what_a_failed_structured_answer_spent(
    stub: OpenAIStub, tmp_path: Path
) -> None:
    stub.usage_cost = 0.25
    stub.queue_replies('{"sentiment": "furious"}', "still not it")
    nodes = [
        {"id": "start", "type": "start"},
        {
            "id": "ai",
            "type": "ai-processor",
            "config": {"prompt": "Rate: cold food", "response_format": SENTIMENT, "cache": False},
        },
        {"id": "end", "type": "end"},
    ]
    settings: dict[str, Any] = {
        "DUCTWORK_LLM_API_KEY": API_KEY,
        "llm_base_url": stub.base_url,
        "llm_max_retries": 0,
    }
    async with embedded(tmp_path, **settings) as app:
        run = await app.execute_definition(definition(nodes, [("start", "ai"), ("ai", "end")]))
    assert run.status is RunStatus.ERROR
    assert run.error is not None and "even after a repair request" in run.error
    assert stub.calls == 2
    assert run.usage is not None and run.usage["calls"] == 2
    assert run.cost == pytest.approx(0.5)


async def test_a_refused_budget_stops_the_call(stub: OpenAIStub, services: NodeServices) -> None:
    ctx = FakeNodeContext(services=services, budget_left=0.0)
    with pytest.raises(NodeError, match="budget"):
        await NODE.run(config(model="stub/priced"), ctx)
    assert stub.calls == 0


async def test_a_cache_hit_skips_the_budget_and_costs_nothing(
    stub: OpenAIStub, services: NodeServices
) -> None:
    await NODE.run(config(model="stub/priced"), FakeNodeContext(services=services))
    ctx = FakeNodeContext(services=services, budget_left=0.0)
    cached = await NODE.run(config(model="stub/priced"), ctx)
    assert cached.cached is True
    assert ctx.budget_checks == []
    assert cached.meta["usage"]["cost"] == 0.0 and cached.meta["usage"]["cached"] is True


# Into a condition, through the engine -----------------------------------------------------


async def test_structured_output_drives_a_condition(stub: OpenAIStub, tmp_path: Path) -> None:
    def classify(request: Any) -> str:
        negative = "cold" in request.user_message
        return orjson.dumps(
            {"sentiment": "negative" if negative else "positive", "score": 0.5}
        ).decode()

    stub.reply = classify
    nodes = [
        {"id": "start", "type": "start"},
        {
            "id": "ai",
            "type": "ai-processor",
            "config": {"prompt": "Rate: {{ review }}", "response_format": SENTIMENT},
        },
        {
            "id": "check",
            "type": "condition",
            "config": {"condition": "input.sentiment == 'negative'"},
        },
        {"id": "end", "type": "end"},
    ]
    edges: list[Any] = [
        ("start", "ai"),
        ("ai", "check"),
        {"from": "check", "to": "end", "branch": "true"},
    ]
    settings: dict[str, Any] = {
        "DUCTWORK_LLM_API_KEY": API_KEY,
        "llm_base_url": stub.base_url,
        "llm_max_retries": 0,
        # Through the composition root's limiter (well under the limit: nothing waits).
        "llm_rate_limits": {"127.0.0.1": {"requests_per_minute": 100}},
    }
    async with embedded(tmp_path, **settings) as app:
        bad = await app.execute_definition(definition(nodes, edges), {"review": "cold food"})
        good = await app.execute_definition(definition(nodes, edges), {"review": "great food"})
        limiter = app.components.services.llm.limiter
    assert isinstance(limiter, MemoryLlmLimiter) and limiter.limits_for(stub.base_url)
    assert bad.status is RunStatus.SUCCESS, bad.error
    assert bad.node_states["ai"].output == {"sentiment": "negative", "score": 0.5}
    assert bad.node_states["check"].branch == "true"
    assert bad.node_states["end"].status is NodeStatus.COMPLETED
    assert good.node_states["check"].branch == "false"
    assert good.node_states["end"].status is NodeStatus.SKIPPED


def test_a_cached_nodes_usage_loads_as_no_call() -> None:
    # The run's usage is summed from meta.usage; a cache hit must not count as a call
    # (CallUsage.load read `calls: 0` as 1 before).
    usage = CallUsage.load(
        {"model": "m", "prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "calls": 0}
    )
    assert usage.calls == 0
    assert CallUsage.load({"model": "m"}).calls == 1
    run = RunUsage()
    run.add(usage)
    assert (run.calls, run.cost, run.unpriced_calls) == (0, 0.0, 0)
