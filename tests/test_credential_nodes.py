"""Nodes with `credential: NAME`: each sends through the credential's settings (real servers)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from pydantic import ValidationError

from ductwork.cache.memory import MemoryCache
from ductwork.clients import sql as sql_module
from ductwork.clients.http import GuardedHttpClient
from ductwork.clients.llm import LLMClient
from ductwork.clients.mail import Mailer
from ductwork.clients.sql import SqlConnections
from ductwork.nodes.ai_processor import AiProcessorConfig, AiProcessorNode
from ductwork.nodes.base import NodeError, NodeServices
from ductwork.nodes.data_source import DataSourceConfig, DataSourceNode
from ductwork.nodes.email import EmailConfig, EmailNode
from ductwork.nodes.webhook import WebhookConfig, WebhookNode
from ductwork.security.credential_types import CREDENTIAL_TYPES, Credential
from ductwork.settings import Settings
from tests.support.http_servers import RecordingHttpServer, Reply
from tests.support.node_context import FakeNodeContext
from tests.support.openai_stub import OpenAIStub
from tests.support.smtp_server import running_smtp_server


def credential(label: str, type_: str, **data: Any) -> Credential:
    return Credential(label, type_, CREDENTIAL_TYPES[type_].model_validate(data))


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[NodeServices]:
    # Settings point nowhere useful: every call must go where its credential says.
    settings = Settings(
        data_dir=tmp_path,
        http_allow_private_networks=True,
        llm_base_url="http://127.0.0.1:9/v1",
        llm_api_key="settings-key",
        llm_default_model="settings-model",
    )
    built = NodeServices(
        settings=settings,
        cache=MemoryCache(),
        llm=LLMClient(settings),
        mail=Mailer(settings),
        http=GuardedHttpClient(settings),
        sql=SqlConnections(settings),
    )
    yield built
    await built.llm.close()
    await built.mail.close()
    await built.http.close()
    await built.sql.close()


async def test_email_sends_through_the_smtp_credential(services: NodeServices) -> None:
    with running_smtp_server(users={"mailer": "smtp-pass-123"}) as server:
        mail = credential(
            "MAIL",
            "smtp",
            host="127.0.0.1",
            port=server.port,
            username="mailer",
            password="smtp-pass-123",
            starttls=False,
            from_address="robot@example.com",
        )
        ctx = FakeNodeContext(services=services, credentials={"MAIL": mail})
        config = EmailConfig.model_validate(
            {"to": "ann@example.com", "subject": "Hi", "body": "b", "credential": "MAIL"}
        )
        first = await EmailNode().run(config, ctx)
        await EmailNode().run(config, ctx)
        assert first.output["backend"] == "smtp"
        assert len(server.messages) == 2
        received = server.messages[0]
        assert received.login == "mailer"
        assert received.message["From"] == "robot@example.com"
        assert server.connection_count == 1  # the credential's connection is reused
    # The settings' backend (file) was not used.
    assert not (services.settings.data_dir / "outbox").exists()


@pytest.mark.parametrize(
    ("type_", "data", "header", "value"),
    [
        ("bearer", {"token": "tok-abcdef"}, "authorization", "Bearer tok-abcdef"),
        ("http_header", {"name": "X-Key", "value": "k-12345"}, "x-key", "k-12345"),
        ("basic", {"username": "u", "password": "p-12345"}, "authorization", "Basic dTpwLTEyMzQ1"),
    ],
)
async def test_webhook_and_api_source_send_the_credential_header(
    services: NodeServices,
    http_server: RecordingHttpServer,
    type_: str,
    data: dict[str, Any],
    header: str,
    value: str,
) -> None:
    ctx = FakeNodeContext(services=services, credentials={"C": credential("C", type_, **data)})
    # A header of the same name in the config is replaced, whatever its case.
    written = {header.upper(): "from-config", "X-Other": "kept"}
    await WebhookNode().run(
        WebhookConfig.model_validate(
            {"url": http_server.url("/hook"), "headers": written, "credential": "C"}
        ),
        ctx,
    )
    await DataSourceNode().run(
        DataSourceConfig.model_validate(
            {"endpoint": http_server.url("/api"), "headers": written, "credential": "C"}
        ),
        ctx,
    )
    for path in ("/hook", "/api"):
        [seen] = http_server.requests(path)
        assert seen.headers[header] == value
        assert seen.headers["x-other"] == "kept"


async def test_a_credential_of_another_type_is_refused(services: NodeServices) -> None:
    ctx = FakeNodeContext(
        services=services, credentials={"C": credential("C", "sql", url="sqlite:///x.db")}
    )
    with pytest.raises(NodeError, match=r"config\.credential: credential 'C' is of type 'sql'"):
        await WebhookNode().run(
            WebhookConfig.model_validate({"url": "http://127.0.0.1:9/", "credential": "C"}), ctx
        )


def _reports_db(tmp_path: Path) -> Path:
    path = tmp_path / "reports.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER, name TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "a"), (2, "b")])
    conn.commit()
    conn.close()
    return path


async def test_database_source_queries_the_sql_credential_read_only(
    services: NodeServices, tmp_path: Path
) -> None:
    db = _reports_db(tmp_path)
    ctx = FakeNodeContext(
        services=services, credentials={"DB": credential("DB", "sql", url=f"sqlite:///{db}")}
    )
    config = DataSourceConfig.model_validate(
        {
            "source_type": "database",
            "credential": "DB",
            "query": "SELECT id, name FROM t WHERE id >= :low ORDER BY id",
            "params": {"low": 1},
        }
    )
    result = await DataSourceNode().run(config, ctx)
    assert result.output == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
    assert "from credential 'DB'" in ctx.logs[-1][1]
    # The same guards as configured connections: the file is opened read-only.
    [engine] = services.sql._credential_engines.values()
    assert engine.url.query["mode"] == "ro"


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("mysql://root:pw-Secret-1@db/x", "driver 'mysql' is not supported"),
        ("postgresql+psycopg2://u:pw-Secret-1@db/x", "is not supported"),
        ("sqlite:///:memory:", "in-memory SQLite database has no data"),
        ("not a url pw-Secret-1", "not a database URL"),
    ],
)
async def test_unsupported_credential_urls_are_refused_without_quoting_them(
    services: NodeServices, url: str, why: str
) -> None:
    # Built without validation: a URL that does not parse is refused when the credential
    # is created now, but one stored before that check must still be refused here.
    data = CREDENTIAL_TYPES["sql"].model_construct(url=url)
    ctx = FakeNodeContext(services=services, credentials={"DB": Credential("DB", "sql", data)})
    config = DataSourceConfig.model_validate(
        {"source_type": "database", "credential": "DB", "query": "SELECT 1"}
    )
    with pytest.raises(NodeError, match=why) as caught:
        await DataSourceNode().run(config, ctx)
    assert "pw-Secret-1" not in str(caught.value)
    assert str(caught.value).startswith("config.credential: credential 'DB' cannot be used")


async def test_credential_engines_are_bounded(
    services: NodeServices, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sql_module, "CREDENTIAL_ENGINES", 2)
    db = _reports_db(tmp_path)
    for index in range(4):
        # Different URLs to the same file (a harmless query parameter apart).
        await services.sql.query_url(
            f"sqlite:///{db}?timeout={index + 1}", "SELECT 1 AS one", {}, label="c"
        )
    assert len(services.sql._credential_engines) == 2


def test_database_source_takes_a_connection_or_a_credential() -> None:
    DataSourceConfig.model_validate(
        {"source_type": "database", "credential": "DB", "query": "SELECT 1"}
    )
    with pytest.raises(ValidationError, match=r"either connection .* or credential"):
        DataSourceConfig.model_validate(
            {"source_type": "database", "connection": "c", "credential": "DB", "query": "SELECT 1"}
        )
    with pytest.raises(ValidationError, match="connection is required"):
        DataSourceConfig.model_validate({"source_type": "database", "query": "SELECT 1"})


async def test_ai_processor_uses_the_llm_credential(services: NodeServices) -> None:
    with (
        OpenAIStub(api_key="llm-key-one") as one,
        OpenAIStub(api_key="llm-key-two") as two,
    ):
        credentials = {
            "ONE": credential(
                "ONE", "llm", base_url=one.base_url, api_key="llm-key-one", default_model="m-one"
            ),
            "ONE_OTHER_ACCOUNT": credential(
                "ONE_OTHER_ACCOUNT", "llm", base_url=one.base_url, api_key="llm-key-bad"
            ),
            "TWO": credential("TWO", "llm", base_url=two.base_url, api_key="llm-key-two"),
        }
        ctx = FakeNodeContext(services=services, credentials=credentials)
        node = AiProcessorNode()

        def config(name: str) -> AiProcessorConfig:
            return AiProcessorConfig.model_validate({"prompt": "hello", "credential": name})

        first = await node.run(config("ONE"), ctx)
        again = await node.run(config("ONE"), ctx)
        other = await node.run(config("TWO"), ctx)
        assert one.calls == 1 and two.calls == 1  # the second ONE call came from the cache
        assert again.cached and not other.cached
        assert one.requests[0].model == "m-one"  # the credential's default model
        assert two.requests[0].model == "settings-model"
        assert one.requests[0].headers["authorization"] == "Bearer llm-key-one"
        # Same request, other provider: its own cache entry; no key in clear in any cache key.
        keys = {first.meta["cache_key"], other.meta["cache_key"]}
        assert len(keys) == 2
        assert not any("llm-key" in key for key in keys)
        # Same provider, another account: not served from the first account's cache.
        with pytest.raises(NodeError, match="401"):
            await node.run(config("ONE_OTHER_ACCOUNT"), ctx)
        assert len(cast(Any, services.llm)._credential_clients) == 3


@pytest.mark.parametrize("node", ["webhook", "api"])
async def test_credential_headers_do_not_follow_a_redirect_to_another_origin(
    services: NodeServices, http_server: RecordingHttpServer, node: str
) -> None:
    # httpx strips only Authorization and Cookie on a cross-origin hop: a credential's
    # X-API-Key would reach whatever host the first server redirects to.
    secret = "k-redirect-9931"
    ctx = FakeNodeContext(
        services=services,
        credentials={"C": credential("C", "http_header", name="X-API-Key", value=secret)},
    )
    with RecordingHttpServer() as elsewhere:
        http_server.script("/away", Reply.redirect(elsewhere.url("/landing")))
        http_server.script("/stay", Reply.redirect("/here"))
        for path in ("/away", "/stay"):
            url = http_server.url(path)
            if node == "webhook":
                await WebhookNode().run(
                    WebhookConfig.model_validate({"url": url, "credential": "C"}), ctx
                )
            else:
                await DataSourceNode().run(
                    DataSourceConfig.model_validate({"endpoint": url, "credential": "C"}), ctx
                )
        [first] = http_server.requests("/away")
        [landed] = elsewhere.requests("/landing")
        [same_origin] = http_server.requests("/here")
    assert first.headers["x-api-key"] == secret
    assert "x-api-key" not in landed.headers
    assert same_origin.headers["x-api-key"] == secret
