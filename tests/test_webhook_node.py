"""The webhook node against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import pytest
from pydantic import ValidationError

from ductwork.clients.http import GuardedHttpClient
from ductwork.clients.sql import SqlConnections
from ductwork.nodes.base import NodeError, NodeServices, RetryableError
from ductwork.nodes.webhook import WebhookConfig, WebhookNode
from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.node_context import FakeNodeContext

NODE = WebhookNode()


@pytest.fixture
def server() -> Iterator[RecordingHttpServer]:
    with RecordingHttpServer() as srv:
        yield srv


@pytest.fixture
async def services() -> AsyncIterator[NodeServices]:
    settings = Settings(http_allow_private_networks=True)
    http = GuardedHttpClient(settings)
    sql = SqlConnections(settings)
    yield NodeServices(
        settings=settings,
        cache=cast(Any, None),
        llm=cast(Any, None),
        mail=cast(Any, None),
        http=http,
        sql=sql,
    )
    await http.close()
    await sql.close()


def config(**fields: Any) -> WebhookConfig:
    return WebhookConfig.model_validate(fields)


async def test_method_headers_query_and_json_body_arrive(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    server.script("/hook", Reply(status=201, body={"id": 7}, headers={"X-Request-Id": "r1"}))
    ctx = FakeNodeContext(services=services)
    result = await NODE.run(
        config(
            url=server.url("/hook?token=abc"),
            method="put",
            headers={"Authorization": "Bearer t0k"},
            query={"page": 2, "ids": [1, 2]},
            body={"name": "widget", "tags": ["a"]},
        ),
        ctx,
    )
    [seen] = server.requests("/hook")
    assert seen.method == "PUT"
    assert seen.headers["authorization"] == "Bearer t0k"
    assert seen.headers["content-type"] == "application/json"
    assert seen.query == {"token": ["abc"], "page": ["2"], "ids": ["1", "2"]}
    assert seen.json() == {"name": "widget", "tags": ["a"]}
    assert result.output["status_code"] == 201
    assert result.output["body"] == {"id": 7}
    assert result.output["headers"]["x-request-id"] == "r1"
    assert set(result.output) == {"status_code", "headers", "body"}
    assert ctx.logs and "PUT" in ctx.logs[0][1] and "token" not in ctx.logs[0][1]


async def test_idempotency_key_is_sent_and_stable_across_attempts(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    server.script("/hook", Reply(status=503, body="busy"), Reply(status=200, body="done"))
    cfg = config(url=server.url("/hook"), body={"n": 1})
    with pytest.raises(RetryableError):
        await NODE.run(cfg, FakeNodeContext(services=services, attempt=1))
    result = await NODE.run(cfg, FakeNodeContext(services=services, attempt=2))
    assert result.output["body"] == "done"
    first, second = server.requests("/hook")
    assert first.idempotency_key == "exec-test:node-test"
    assert first.idempotency_key == second.idempotency_key


async def test_idempotency_key_differs_between_nodes_and_runs(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    cfg = config(url=server.url("/hook"))
    await NODE.run(cfg, FakeNodeContext(services=services, node_id="a"))
    await NODE.run(cfg, FakeNodeContext(services=services, node_id="b"))
    await NODE.run(cfg, FakeNodeContext(services=services, node_id="a", execution_id="other"))
    keys = [seen.idempotency_key for seen in server.requests("/hook")]
    assert len(set(keys)) == 3


async def test_server_error_is_retryable_with_status_and_excerpt(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    server.script("/hook", Reply(status=503, body="upstream is down for maintenance"))
    with pytest.raises(RetryableError) as caught:
        await NODE.run(config(url=server.url("/hook")), FakeNodeContext(services=services))
    assert "503" in str(caught.value)
    assert "upstream is down" in str(caught.value)


async def test_rate_limit_is_retryable(server: RecordingHttpServer, services: NodeServices) -> None:
    server.script("/hook", Reply(status=429, headers={"Retry-After": "3"}))
    with pytest.raises(RetryableError, match="Retry-After: 3"):
        await NODE.run(config(url=server.url("/hook")), FakeNodeContext(services=services))


async def test_not_found_is_a_plain_node_error(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    server.script("/hook", Reply(status=404, body={"error": "no such hook"}))
    with pytest.raises(NodeError) as caught:
        await NODE.run(config(url=server.url("/hook")), FakeNodeContext(services=services))
    assert not isinstance(caught.value, RetryableError)
    assert "404" in str(caught.value) and "no such hook" in str(caught.value)


async def test_body_defaults_to_the_node_input(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    ctx = FakeNodeContext(services=services, input={"user": "ada", "score": 12})
    await NODE.run(config(url=server.url("/hook")), ctx)
    # An explicit null means "no body", and GET never sends the input.
    await NODE.run(config(url=server.url("/none"), body=None), ctx)
    await NODE.run(config(url=server.url("/get"), method="GET"), ctx)
    assert server.requests("/hook")[0].json() == {"user": "ada", "score": 12}
    assert server.requests("/none")[0].body == b""
    assert server.requests("/get")[0].body == b""


async def test_string_body_with_non_json_content_type_is_sent_raw(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    cfg = config(url=server.url("/xml"), headers={"Content-Type": "text/xml"}, body="<a>1</a>")
    await NODE.run(cfg, FakeNodeContext(services=services))
    await NODE.run(config(url=server.url("/json"), body="hi"), FakeNodeContext(services=services))
    assert server.requests("/xml")[0].body == b"<a>1</a>"
    assert server.requests("/json")[0].json() == "hi"


async def test_expected_status(server: RecordingHttpServer, services: NodeServices) -> None:
    server.script("/hook", Reply(status=200, body="ok"))
    with pytest.raises(NodeError, match=r"expected one of \[201\]"):
        await NODE.run(
            config(url=server.url("/hook"), expected_status=[201]),
            FakeNodeContext(services=services),
        )
    server.script("/gone", Reply(status=410))
    result = await NODE.run(
        config(url=server.url("/gone"), expected_status=[200, 410]),
        FakeNodeContext(services=services),
    )
    assert result.output["status_code"] == 410


async def test_slow_receiver_times_out_as_retryable(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    server.set_delay("/slow", 5)
    with pytest.raises(RetryableError, match="timed out"):
        await NODE.run(
            config(url=server.url("/slow"), timeout_seconds=0.2),
            FakeNodeContext(services=services),
        )
    assert server.calls("/slow") == 1


async def test_in_flight_call_is_visible_before_the_reply(
    server: RecordingHttpServer, services: NodeServices
) -> None:
    # What crash-resume tests rely on: a held reply shows the call as arrived, not done.
    server.hold("/hook")
    task = asyncio.create_task(
        NODE.run(config(url=server.url("/hook")), FakeNodeContext(services=services))
    )
    [seen] = await server.wait_for_calls_async("/hook", 1, timeout=15)
    assert seen.idempotency_key == "exec-test:node-test"
    assert server.completed("/hook") == 0 and not task.done()
    server.release("/hook")
    result = await asyncio.wait_for(task, 15)
    assert result.output["status_code"] == 200
    assert server.completed("/hook") == 1


async def test_private_addresses_are_blocked_by_default(server: RecordingHttpServer) -> None:
    settings = Settings()
    http = GuardedHttpClient(settings)
    services = NodeServices(
        settings, cast(Any, None), cast(Any, None), cast(Any, None), http, cast(Any, None)
    )
    try:
        with pytest.raises(NodeError, match="DUCTWORK_HTTP_ALLOWED_HOSTS"):
            await NODE.run(config(url=server.url("/hook")), FakeNodeContext(services=services))
    finally:
        await http.close()
    assert server.calls() == 0


def test_config_validation_and_node_declarations() -> None:
    assert NODE.side_effects is True
    assert "body" in NODE.native_fields
    assert config(url="https://example.com/hook").method == "POST"  # the seed config
    with pytest.raises(ValidationError, match="http:// or https://"):
        config(url="ftp://example.com/x")
    with pytest.raises(ValidationError):
        config(url="https://example.com", method="BREW")
    with pytest.raises(ValidationError, match="not HTTP statuses"):
        config(url="https://example.com", expected_status=[42])
    with pytest.raises(ValidationError, match="Extra inputs"):
        config(url="https://example.com", bdy={})
    assert config(url="{{ base_url }}/hook").url == "{{ base_url }}/hook"
    assert "body" in NODE.json_schema()["properties"]
