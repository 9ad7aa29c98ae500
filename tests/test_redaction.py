"""Credentials used by a run never surface: outputs, states, events (stored and live), logs,
errors, the run's result, and the store's raw rows (SQLite and PostgreSQL)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import make_url

from ductwork.engine.graph import validate
from ductwork.engine.references import (
    DYNAMIC_SECRETS_MESSAGE,
    credential_names,
    secret_references,
)
from ductwork.models import Run
from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType
from ductwork.nodes.registry import REGISTRY
from ductwork.security.redaction import MASK, ActiveSecrets, Redactor, SecretLogFilter
from ductwork.service import Ductwork
from tests.support.credentials import LiveEvents, MemoryCredentials, postgres_rows, sqlite_rows
from tests.support.engine import definition, embedded
from tests.support.http_servers import RecordingHttpServer
from tests.support.openai_stub import OpenAIStub

NOTE = 'note"Secret-5150'  # a quote: its JSON-escaped form differs from the value
TOKEN = "tok-9f2c7e1d4b8a"
PASSWORD = "pw-Basic-7731"
HEADER_VALUE = "hdr-value-31337"


class LeakyConfig(NodeConfig):
    value: str


class LeakyNode(NodeType[LeakyConfig]):
    """Raises an unexpected exception carrying its (secret) config value."""

    type_name = "leaky"
    config_model = LeakyConfig

    async def run(self, config: LeakyConfig, ctx: NodeContext) -> NodeResult:
        ctx.log(f"about to fail with {config.value}")
        raise RuntimeError(f"unexpected: {config.value}")


async def run_workflow(
    app: Ductwork, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]
) -> Run:
    workflow = await app.create_workflow(definition(nodes, edges))
    run, _ = await app.execute(workflow.id, {}, wait=True)
    return await app.get_run(run.execution_id)


def texts_of(run: Run, live: LiveEvents, caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    return {
        "run": run.model_dump_json(),
        "events": orjson.dumps([e.model_dump(mode="json") for e in run.events]).decode(),
        "live": live.text(),
        "logs": caplog.text,
    }


def assert_absent(secrets: list[str], places: dict[str, str]) -> None:
    for where, text in places.items():
        for secret in secrets:
            forms = {secret, orjson.dumps(secret).decode()[1:-1], repr(secret)[1:-1]}
            for form in forms:
                assert form not in text, f"{secret!r} ({form!r}) found in {where}"


@asynccontextmanager
async def app_with(
    source: MemoryCredentials, tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[Ductwork, LiveEvents]]:
    """An embedded app holding `source`'s credentials, and a recorder of what it publishes."""
    async with embedded(tmp_path, **settings) as app:
        await source.install(app)
        yield app, LiveEvents(app)


def assert_nowhere(
    secrets: list[str],
    run: Run,
    live: LiveEvents,
    caplog: pytest.LogCaptureFixture,
    *,
    store: str,
) -> None:
    """No secret in the run, its events (stored and live), the logs, or the store's rows."""
    places = texts_of(run, live, caplog)
    places["store"] = store
    assert_absent(secrets, places)


def store_rows(app: Ductwork) -> str:
    url = make_url(app.settings.resolved_store_url)
    assert url.database
    return sqlite_rows(url.database)


# --- a credential used by a webhook ------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "sent_header", "sent_value", "secrets"),
    [
        ("bearer", "authorization", f"Bearer {TOKEN}", [TOKEN]),
        ("http_header", "x-api-key", HEADER_VALUE, [HEADER_VALUE]),
        ("basic", "authorization", None, [PASSWORD]),
    ],
)
async def test_webhook_credential_reaches_the_server_and_nowhere_else(
    tmp_path: Path,
    http_server: RecordingHttpServer,
    caplog: pytest.LogCaptureFixture,
    auth: str,
    sent_header: str,
    sent_value: str | None,
    secrets: list[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    data = {
        "bearer": {"token": TOKEN},
        "http_header": {"name": "X-Api-Key", "value": HEADER_VALUE},
        "basic": {"username": "ann", "password": PASSWORD},
    }[auth]
    source = MemoryCredentials(AUTH=(auth, data), NOTE=("secret", {"value": NOTE}))
    async with app_with(source, tmp_path, http_allow_private_networks=True) as (app, live):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {
                    "id": "hook",
                    "type": "webhook",
                    "config": {
                        "url": http_server.url("/echo"),
                        "credential": "AUTH",
                        "body": {"note": "{{ secrets.NOTE }}"},
                    },
                },
                {
                    "id": "t",
                    "type": "transformer",
                    "config": {
                        "transform_type": "compose",
                        "mapping": {"copy": "secrets.NOTE", "echo": "outputs.hook.body.headers"},
                    },
                },
                {"id": "end", "type": "end", "config": {"output": "{{ secrets.NOTE }} done"}},
            ],
            [("start", "hook"), ("hook", "t"), ("t", "end")],
        )
        assert run.status == "success", run.error
        [seen] = http_server.requests("/echo")
        if sent_value is None:  # basic: the encoded pair
            assert seen.headers[sent_header].startswith("Basic ")
            secrets = [*secrets, seen.headers[sent_header].removeprefix("Basic ")]
        else:
            assert seen.headers[sent_header] == sent_value
        assert seen.json() == {"note": NOTE}  # the template rendered the real value
        # The remote echoed the header and the body back; the run holds masks instead.
        hook = run.node_states["hook"].output
        assert hook["body"]["headers"][sent_header].endswith(MASK)
        assert MASK in hook["body"]["body"]
        assert run.node_states["t"].output["copy"] == MASK
        assert run.result == f"{MASK} done"
        assert source.requests == [{"AUTH", "NOTE"}]  # only the names the workflow uses
        assert_nowhere([*secrets, NOTE], run, live, caplog, store=store_rows(app))


# --- secrets raised in errors --------------------------------------------------------------


async def test_int_of_a_secret_in_a_condition_is_masked_in_the_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-a-number-4242"
    source = MemoryCredentials(NUM=("secret", {"value": secret}))
    async with app_with(source, tmp_path) as (app, live):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {"id": "c", "type": "condition", "config": {"condition": "int(secrets.NUM) > 1"}},
            ],
            [("start", "c")],
        )
        assert run.status == "error"
        error = run.node_states["c"].error or ""
        assert "invalid literal for int()" in error and MASK in error, error
        assert run.error is not None and MASK in run.error
        assert_nowhere([secret], run, live, caplog, store=store_rows(app))


async def test_an_email_to_holding_a_secret_is_masked_in_the_address_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "not-an-address-secret"
    source = MemoryCredentials(ADDR=("secret", {"value": secret}))
    async with app_with(source, tmp_path) as (app, live):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {
                    "id": "mail",
                    "type": "email",
                    "config": {"to": "{{ secrets.ADDR }}", "subject": "s", "body": "b"},
                },
            ],
            [("start", "mail")],
        )
        assert run.status == "error"
        error = run.node_states["mail"].error or ""
        assert "is not a valid email address" in error and MASK in error, error
        assert_nowhere([secret], run, live, caplog, store=store_rows(app))


async def test_a_webhook_host_built_from_a_secret_is_masked_in_the_connection_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "hostsecret-8086"
    source = MemoryCredentials(HOST=("secret", {"value": secret}))
    async with app_with(source, tmp_path, http_allow_private_networks=True) as (app, live):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {
                    "id": "hook",
                    "type": "webhook",
                    "config": {"url": "http://{{ secrets.HOST }}.invalid/path"},
                },
            ],
            [("start", "hook")],
        )
        assert run.status == "error"
        error = run.node_states["hook"].error or ""
        assert f"{MASK}.invalid" in error, error
        assert_nowhere([secret], run, live, caplog, store=store_rows(app))


async def test_an_unexpected_exception_with_a_secret_is_masked_in_logs_and_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "leaked-in-traceback-99"
    source = MemoryCredentials(S=("secret", {"value": secret}))
    async with app_with(source, tmp_path, extra_nodes=[LeakyNode()]) as (app, live):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {"id": "leak", "type": "leaky", "config": {"value": "{{ secrets.S }}"}},
            ],
            [("start", "leak")],
        )
        assert run.status == "error"
        assert run.node_states["leak"].error == f"RuntimeError: unexpected: {MASK}"
        # The executor logged the exception with its traceback: masked there too.
        assert "node leak of run" in caplog.text and "RuntimeError" in caplog.text
        log_events = [e for e in run.events if e.type == "log" and e.node_id == "leak"]
        assert log_events[0].data["message"] == f"about to fail with {MASK}"
        assert_nowhere([secret], run, live, caplog, store=store_rows(app))


async def test_a_postgres_bind_error_with_the_password_is_masked_in_every_row(
    tmp_path: Path,
    store_url_factory: Callable[[str], str],
    postgres_admin_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    password = "pw-Postgres-6543"
    # Trust auth ignores the password: the credential connects, and its password is a secret.
    db_url = make_url(postgres_admin_url).set(password=password)
    source = MemoryCredentials(
        DB=("sql", {"url": db_url.render_as_string(hide_password=False)}),
        PW=("secret", {"value": password}),
    )
    store_url = store_url_factory("postgresql")
    async with app_with(source, tmp_path, store_url=store_url) as (app, live):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {
                    "id": "q",
                    "type": "data-source",
                    "config": {
                        "source_type": "database",
                        "credential": "DB",
                        "query": "SELECT CAST(:p AS int) AS n",
                        "params": {"p": "{{ secrets.PW }}"},
                    },
                },
            ],
            [("start", "q")],
        )
        assert run.status == "error"
        error = run.node_states["q"].error or ""
        assert "query on credential 'DB' failed" in error and MASK in error, error
        assert_nowhere([password], run, live, caplog, store=await postgres_rows(store_url))


async def test_streamed_tokens_and_the_reply_are_masked(
    tmp_path: Path, llm: OpenAIStub, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "streamed-secret-1234"
    source = MemoryCredentials(S=("secret", {"value": secret}))
    async with app_with(source, tmp_path, llm_base_url=llm.base_url, llm_api_key="test-key") as (
        app,
        live,
    ):
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {
                    "id": "ai",
                    "type": "ai-processor",
                    "config": {"prompt": "say {{ secrets.S }} now", "stream": True},
                },
            ],
            [("start", "ai")],
        )
        assert run.status == "success", run.error
        assert llm.requests[0].user_message == f"say {secret} now"
        assert run.node_states["ai"].output == f"Echo: say {MASK} now"
        tokens = [e for e in live.events if e.type == "token"]
        assert tokens and any(MASK in e.data["text"] for e in tokens)
        assert_nowhere([secret], run, live, caplog, store=store_rows(app))


# --- which credentials a run loads ---------------------------------------------------------


async def test_env_secrets_are_a_fallback_and_masked_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env_secret = "env-secret-value-77"
    source = MemoryCredentials(UNUSED=("secret", {"value": "unused-value-0000"}))
    async with embedded(tmp_path, secrets={"FROM_ENV": env_secret}) as app:
        await source.install(app)
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {"id": "end", "type": "end", "config": {"output": "{{ secrets.FROM_ENV }}!"}},
            ],
            [("start", "end")],
        )
        assert run.status == "success", run.error
        assert run.result == f"{MASK}!"
        assert source.requests == [{"FROM_ENV"}]  # never the whole set
        assert env_secret not in store_rows(app)


async def test_missing_or_mistyped_credentials_fail_the_node_clearly(tmp_path: Path) -> None:
    # Saving checks names and types, so make a valid workflow, then take its credentials
    # away the ways a running deployment can: forced delete, and replace with another type.
    source = MemoryCredentials(
        GONE=("bearer", {"token": "gone-token-1"}),
        MAIL=("bearer", {"token": "mail-token-1"}),
        NOPE=("secret", {"value": "nope-value"}),
    )
    async with embedded(tmp_path, http_allow_private_networks=True) as app:
        await source.install(app)
        assert app.credentials is not None
        original_create = app.create_workflow

        async def create_then_break(definition: Any) -> Any:
            workflow = await original_create(definition)
            service = source.service
            assert service is not None
            await service.delete("GONE", force=True)
            await service.delete("NOPE", force=True)
            await service.replace("MAIL", "smtp", {"host": "127.0.0.1"})
            return workflow

        app.create_workflow = create_then_break  # type: ignore[method-assign]
        run = await run_workflow(
            app,
            [
                {"id": "start", "type": "start"},
                {
                    "id": "gone",
                    "type": "webhook",
                    "on_error": "continue",
                    "config": {"url": "http://127.0.0.1:9/x", "credential": "GONE"},
                },
                {
                    "id": "typed",
                    "type": "webhook",
                    "on_error": "continue",
                    "config": {"url": "http://127.0.0.1:9/x", "credential": "MAIL"},
                },
                {
                    "id": "unknown",
                    "type": "end",
                    "on_error": "continue",
                    "config": {"output": "{{ secrets.NOPE }}"},
                },
            ],
            [("start", "gone"), ("start", "typed"), ("start", "unknown")],
        )
        states = run.node_states
        assert (
            states["gone"].error
            == "config.credential: no credential named 'GONE' (was it deleted?)"
        )
        assert states["typed"].error == (
            "config.credential: credential 'MAIL' is of type 'smtp'; this node needs one of: "
            "basic, bearer, http_header"
        )
        assert states["unknown"].error == (
            "config.output: secrets.NOPE: no credential (or DUCTWORK_SECRETS entry) named 'NOPE'"
        )


def test_secret_references_read_the_syntax_tree() -> None:
    assert secret_references("{{ secrets.A }} {{ secrets['b-c'] }} {{ 'secrets.X' }}") == (
        "A",
        "b-c",
    )
    assert secret_references("{{ outputs.a }}") == ()


@pytest.mark.parametrize(
    "template",
    [
        "{{ secrets[name] }}",
        "{{ secrets }}",
        "{{ secrets | attr('A') }}",
        "{{ secrets.items() | list }}",
        "{% for k in secrets %}{{ k }}{% endfor %}",
    ],
)
def test_dynamic_secret_access_is_a_validation_issue(template: str) -> None:
    issues = validate(
        definition(
            [{"id": "end", "type": "end", "config": {"output": template}}],
            [],
        ),
        REGISTRY,
    )
    assert [(i.node_id, i.field, i.message) for i in issues] == [
        ("end", "config.output", DYNAMIC_SECRETS_MESSAGE)
    ]


def test_a_templated_credential_name_is_a_validation_issue() -> None:
    issues = validate(
        definition(
            [
                {
                    "id": "hook",
                    "type": "webhook",
                    "config": {"url": "https://example.com", "credential": "{{ name }}"},
                }
            ],
            [],
        ),
        REGISTRY,
    )
    assert [(i.field, i.message) for i in issues] == [
        ("config.credential", "must be a credential's name, not a template")
    ]


def test_credential_names_cover_templates_expressions_and_credential_fields() -> None:
    workflow = definition(
        [
            {"id": "c", "type": "condition", "config": {"condition": "secrets.LIMIT > 1"}},
            {
                "id": "hook",
                "type": "webhook",
                "config": {
                    "url": "https://example.com/{{ secrets.PATH }}",
                    "headers": {"X": "{{ secrets['H-1'] }}"},
                    "credential": "AUTH",
                },
            },
            {"id": "ai", "type": "ai-processor", "config": {"prompt": "p", "credential": "LLM"}},
            {"id": "plain", "type": "end", "config": {"output": "secrets.NOT_A_TEMPLATE"}},
        ],
        [("c", "hook"), ("hook", "ai"), ("ai", "plain")],
    )
    assert credential_names(workflow, REGISTRY) == {"LIMIT", "PATH", "H-1", "AUTH", "LLM"}


# --- the redactor and the logging filter ---------------------------------------------------


def test_redactor_masks_plain_json_escaped_and_repr_forms() -> None:
    secret = 'a"b\\c-secret'
    redactor = Redactor([secret, "abc"])  # too short to mask: ignored
    assert redactor.text(f"x {secret} y") == f"x {MASK} y"
    assert redactor.text(orjson.dumps({"k": secret}).decode()) == '{"k":"***"}'
    assert redactor.text(repr(secret)) == f"'{MASK}'"
    assert redactor.text("abc") == "abc"
    value = {"list": [secret, 1, {"inner": f"<{secret}>"}], secret: None}
    masked, encoded = redactor.output(value, orjson.dumps(value))
    assert masked == {"list": [MASK, 1, {"inner": f"<{MASK}>"}], MASK: None}
    assert orjson.loads(encoded) == masked
    clean = {"nothing": "here"}
    same, _ = redactor.output(clean, orjson.dumps(clean))
    assert same is clean  # the fast path: no walk, no copy


def test_log_filter_masks_active_secrets_refcounted_per_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    active = ActiveSecrets()
    log_filter = SecretLogFilter(active)
    logger = logging.getLogger("ductwork.test.redaction")
    logger.addFilter(log_filter)
    try:
        caplog.set_level(logging.INFO, logger="ductwork.test.redaction")
        active.add(["run-secret-1"])
        active.add(["run-secret-1"])  # a second run with the same credential
        try:
            raise ValueError("boom run-secret-1")
        except ValueError:
            logger.exception("failed with %s", "run-secret-1")
        active.remove(["run-secret-1"])  # the second run is still going
        logger.info("still %s", "run-secret-1")
        assert "run-secret-1" not in caplog.text
        assert caplog.text.count(MASK) == 4  # message, source line, exception, second line
        active.remove(["run-secret-1"])
        logger.info("after %s", "run-secret-1")
        assert "after run-secret-1" in caplog.text
    finally:
        logger.removeFilter(log_filter)
