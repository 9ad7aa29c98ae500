"""The `email` node and the mail client, over real SMTP (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any, cast

import aiosmtplib
import pytest
from pydantic import SecretStr, ValidationError

from ductwork.clients.mail import Mailer, PartialDeliveryError, SmtpBackend
from ductwork.clients.mail_message import build_message, html_to_text, make_message_id
from ductwork.nodes.base import NodeError, NodeResult, NodeServices, RetryableError
from ductwork.nodes.email import EmailConfig, EmailNode, parse_addresses
from ductwork.settings import Settings
from tests.support.node_context import FakeNodeContext
from tests.support.smtp_server import SmtpTestServer, free_port, running_smtp_server

SENDER = "flows@example.com"
NODE = EmailNode()


def smtp_settings(server: SmtpTestServer | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "email_backend": "smtp",
        "email_from": SENDER,
        "smtp_host": "127.0.0.1",
        "smtp_port": server.port if server else free_port(),
        "smtp_timeout_seconds": 5.0,
    }
    values.update(overrides)
    return Settings(**values)


def context(mailer: Mailer, settings: Settings, **fields: Any) -> FakeNodeContext:
    services = NodeServices(
        settings=settings,
        cache=cast(Any, None),
        llm=cast(Any, None),
        mail=mailer,
        http=cast(Any, None),
        sql=cast(Any, None),
    )
    return FakeNodeContext(services=services, **fields)


async def send(ctx: FakeNodeContext, **config: Any) -> NodeResult:
    return await NODE.run(EmailConfig.model_validate(config), ctx)


@pytest.fixture
def smtp_server() -> Iterator[SmtpTestServer]:
    with running_smtp_server() as server:
        yield server


@pytest.fixture
async def mailer(smtp_server: SmtpTestServer) -> AsyncIterator[Mailer]:
    mailer = Mailer(smtp_settings(smtp_server))
    yield mailer
    await mailer.close()


@pytest.fixture
def ctx(mailer: Mailer, smtp_server: SmtpTestServer) -> FakeNodeContext:
    return context(mailer, smtp_settings(smtp_server))


def plain_body(message: EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


# --- delivery over SMTP -----------------------------------------------------


async def test_message_arrives_with_rendered_fields(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    result = await send(
        ctx, to="ann@example.com", subject="Hello Ann", body="Result: 42 — très bien"
    )

    [received] = smtp_server.messages
    assert received.mail_from == SENDER
    assert received.rcpt_tos == ["ann@example.com"]
    assert received.message["Subject"] == "Hello Ann"
    assert received.message["From"] == SENDER
    assert received.message["To"] == "ann@example.com"
    assert plain_body(received.message) == "Result: 42 — très bien\n"
    assert result.output == {
        "message_id": received.message["Message-ID"],
        "to": ["ann@example.com"],
        "subject": "Hello Ann",
        "backend": "smtp",
    }
    assert any("sent to 1 recipient" in line for _, line in ctx.logs)


async def test_to_list_cc_and_bcc_reach_the_envelope(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    result = await send(
        ctx,
        to=["ann@example.com", "Bob Smith <bob@example.com>"],
        cc="carol@example.com, Dan <dan@example.com>",
        bcc=["eve@example.com"],
        reply_to="support@example.com",
        subject="Team",
        body="hi",
    )

    [received] = smtp_server.messages
    assert sorted(received.rcpt_tos) == sorted(
        [
            "ann@example.com",
            "bob@example.com",
            "carol@example.com",
            "dan@example.com",
            "eve@example.com",
        ]
    )
    headers = received.message
    assert [a.addr_spec for a in headers["To"].addresses] == ["ann@example.com", "bob@example.com"]
    assert headers["To"].addresses[1].display_name == "Bob Smith"
    assert [a.addr_spec for a in headers["Cc"].addresses] == [
        "carol@example.com",
        "dan@example.com",
    ]
    assert headers["Bcc"] is None, "Bcc recipients must not be disclosed in the headers"
    assert headers["Reply-To"] == "support@example.com"
    assert result.output["to"] == ["ann@example.com", "Bob Smith <bob@example.com>"]


async def test_comma_separated_to(smtp_server: SmtpTestServer, ctx: FakeNodeContext) -> None:
    await send(ctx, to="ann@example.com; bob@example.com , ", subject="s", body="b")
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["ann@example.com", "bob@example.com"]


async def test_message_id_is_derived_from_the_idempotency_key(
    smtp_server: SmtpTestServer, mailer: Mailer
) -> None:
    settings = smtp_settings(smtp_server)
    first = context(mailer, settings, execution_id="run-1", node_id="mail", attempt=1)
    retry = context(mailer, settings, execution_id="run-1", node_id="mail", attempt=2)
    other = context(mailer, settings, execution_id="run-2", node_id="mail")

    ids = [
        (await send(c, to="ann@example.com", subject="s", body="b")).output["message_id"]
        for c in (first, retry, other)
    ]

    assert ids[0] == ids[1] == make_message_id("run-1:mail")
    assert ids[2] != ids[0]
    assert re.fullmatch(r"<[0-9a-f]{32}@ductwork>", ids[0])
    assert [m.message["Message-ID"] for m in smtp_server.messages] == ids


async def test_from_address_override_and_html_alternative(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    html = '<h1>Report</h1><p>Total: <b>42</b></p><ul><li>one</li></ul><a href="https://x.example">more</a>'
    await send(
        ctx,
        to="ann@example.com",
        from_address="Reports <reports@example.com>",
        subject="Line one\nline two",
        body=html,
        html=True,
    )

    [received] = smtp_server.messages
    message = received.message
    assert received.mail_from == "reports@example.com"
    assert message["From"].addresses[0].display_name == "Reports"
    assert message["Subject"] == "Line one line two"
    assert message.get_content_type() == "multipart/alternative"
    html_part = message.get_body(("html",))
    assert html_part is not None and html_part.get_content() == html + "\n"
    text = plain_body(message)
    assert "Report" in text and "Total: 42" in text and "- one" in text
    assert "more (https://x.example)" in text
    assert "<" not in text


async def test_auth_login(tmp_path: Path) -> None:
    with running_smtp_server(users={"mailer": "s3cret"}) as server:
        settings = smtp_settings(server, smtp_username="mailer", smtp_password=SecretStr("s3cret"))
        mailer = Mailer(settings)
        try:
            await send(context(mailer, settings), to="ann@example.com", subject="s", body="b")
        finally:
            await mailer.close()
        [received] = server.messages
        assert received.login == "mailer"

        wrong = smtp_settings(server, smtp_username="mailer", smtp_password=SecretStr("nope"))
        mailer = Mailer(wrong)
        with pytest.raises(NodeError) as failure:
            await send(context(mailer, wrong), to="ann@example.com", subject="s", body="b")
        await mailer.close()
        assert not failure.value.retryable
        assert "535" in str(failure.value) and "mailer" in str(failure.value)

        anonymous = smtp_settings(server)
        mailer = Mailer(anonymous)
        with pytest.raises(NodeError) as failure:
            await send(context(mailer, anonymous), to="ann@example.com", subject="s", body="b")
        await mailer.close()
        assert not failure.value.retryable
        assert "530" in str(failure.value)
        assert len(server.messages) == 1


# --- failures ---------------------------------------------------------------


async def test_permanent_rejection_is_a_node_error_with_the_server_message(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    smtp_server.reply_next("RCPT", "550 5.1.1 Mailbox unavailable here")
    with pytest.raises(NodeError) as failure:
        await send(ctx, to="ghost@example.com", subject="s", body="b")
    assert not isinstance(failure.value, RetryableError)
    assert not failure.value.retryable
    assert "550" in str(failure.value) and "Mailbox unavailable here" in str(failure.value)
    assert smtp_server.messages == []


async def test_data_rejection_is_permanent_and_the_connection_stays_usable(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    smtp_server.reply_next("DATA", "554 5.7.1 Message looks like spam")
    with pytest.raises(NodeError) as failure:
        await send(ctx, to="ann@example.com", subject="s", body="b")
    assert not failure.value.retryable
    assert "Message looks like spam" in str(failure.value)

    await send(ctx, to="ann@example.com", subject="second", body="b")
    assert [m.message["Subject"] for m in smtp_server.messages] == ["second"]
    assert smtp_server.connection_count == 1


async def test_temporary_rejection_is_retryable(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    smtp_server.reply_next("RCPT", "451 4.3.0 Try again later")
    with pytest.raises(RetryableError) as failure:
        await send(ctx, to="ann@example.com", subject="s", body="b")
    assert failure.value.retryable
    assert "451" in str(failure.value)

    smtp_server.reply_next("MAIL", "421 4.3.2 Service shutting down")
    with pytest.raises(RetryableError):
        await send(ctx, to="ann@example.com", subject="s", body="b")


async def test_partial_refusal_fails_without_retry(
    smtp_server: SmtpTestServer, ctx: FakeNodeContext
) -> None:
    smtp_server.reply_next("RCPT", "550 5.1.1 No such user")
    with pytest.raises(PartialDeliveryError) as failure:
        await send(ctx, to="ghost@example.com, ann@example.com", subject="s", body="b")
    assert not failure.value.retryable
    assert failure.value.refused == {"ghost@example.com": (550, "5.1.1 No such user")}
    [received] = smtp_server.messages
    assert received.rcpt_tos == ["ann@example.com"]


async def test_server_down_is_retryable() -> None:
    settings = smtp_settings(None)  # a free port: nothing listens there
    mailer = Mailer(settings)
    with pytest.raises(RetryableError) as failure:
        await send(context(mailer, settings), to="ann@example.com", subject="s", body="b")
    await mailer.close()
    assert str(settings.smtp_port) in str(failure.value)
    # Failed on the refused connection itself, not after waiting out a timeout.
    cause = failure.value.__cause__
    assert isinstance(cause, aiosmtplib.SMTPConnectError), repr(cause)
    assert not isinstance(cause, aiosmtplib.SMTPConnectTimeoutError), repr(cause)


async def test_silent_server_times_out_as_retryable() -> None:
    connected = asyncio.Event()

    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # hold the connection open without a greeting
        writer.close()

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = smtp_settings(None, smtp_port=port, smtp_timeout_seconds=0.2)
    mailer = Mailer(settings)
    try:
        with pytest.raises(RetryableError):
            await send(context(mailer, settings), to="ann@example.com", subject="s", body="b")
        assert connected.is_set()
    finally:
        await mailer.close()
        server.close()


# --- the connection ---------------------------------------------------------


async def test_one_connection_is_reused_across_sends(
    smtp_server: SmtpTestServer, mailer: Mailer, ctx: FakeNodeContext
) -> None:
    await send(ctx, to="ann@example.com", subject="one", body="b")
    await send(ctx, to="bob@example.com", subject="two", body="b")
    await asyncio.gather(
        *(send(ctx, to="carol@example.com", subject=f"p{i}", body="b") for i in range(5))
    )

    assert len(smtp_server.messages) == 7
    assert smtp_server.connection_count == 1
    assert len({m.peer for m in smtp_server.messages}) == 1
    assert isinstance(mailer.backend, SmtpBackend)
    assert mailer.backend.connections_opened == 1


async def test_reconnects_after_the_server_dropped_the_connection(
    smtp_server: SmtpTestServer, mailer: Mailer, ctx: FakeNodeContext
) -> None:
    await send(ctx, to="ann@example.com", subject="before", body="b")
    smtp_server.disconnect_clients()

    await send(ctx, to="ann@example.com", subject="after", body="b")

    assert [m.message["Subject"] for m in smtp_server.messages] == ["before", "after"]
    assert smtp_server.connection_count == 2


async def test_reconnects_after_close(
    smtp_server: SmtpTestServer, mailer: Mailer, ctx: FakeNodeContext
) -> None:
    await send(ctx, to="ann@example.com", subject="one", body="b")
    await mailer.close()
    await send(ctx, to="ann@example.com", subject="two", body="b")
    assert len(smtp_server.messages) == 2
    assert smtp_server.connection_count == 2


async def test_a_long_series_of_sends_keeps_one_connection(
    smtp_server: SmtpTestServer, mailer: Mailer
) -> None:
    # The time per send on this connection is measured by bench/nodes.py.
    sends = 200
    for i in range(sends):
        message = build_message(to=["ann@example.com"], subject=f"m{i}", body="b", sender=SENDER)
        await mailer.send(message)
    assert len(smtp_server.messages) == sends
    assert smtp_server.connection_count == 1
    assert isinstance(mailer.backend, SmtpBackend)
    assert mailer.backend.connections_opened == 1


def test_ssl_and_starttls_are_exclusive() -> None:
    with pytest.raises(ValueError, match="mutually exclusive"):
        Mailer(smtp_settings(None, smtp_ssl=True, smtp_starttls=True))


# --- addresses --------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        ({"to": "not-an-address"}, "to", "not-an-address"),
        ({"to": ["ann@example.com", "bob@"]}, "to[1]", "bob@"),
        ({"to": "ann@example.com", "cc": "carol@example.com, nobody"}, "cc", "nobody"),
        ({"to": "ann@example.com", "reply_to": "a b@example.com"}, "reply_to", "a b@example.com"),
        ({"to": "ann@example.com", "from_address": "me@@example.com"}, "from_address", "me@@"),
        ({"to": " , "}, "to", ""),
    ],
)
async def test_invalid_address_names_the_field_and_value(
    smtp_server: SmtpTestServer,
    ctx: FakeNodeContext,
    config: dict[str, Any],
    field: str,
    value: str,
) -> None:
    with pytest.raises(NodeError) as failure:
        await send(ctx, subject="s", body="b", **config)
    text = str(failure.value)
    assert text.startswith(f"{field}:"), text
    assert value in text
    assert not failure.value.retryable
    assert smtp_server.messages == []


def test_config_accepts_templates_and_rejects_bad_shapes() -> None:
    seed = EmailConfig.model_validate(
        {"to": "{{email}}", "subject": "Hello", "body": "Result: {{outputs.ai1}}"}
    )
    assert seed.to == "{{email}}" and seed.html is False
    assert EmailNode.native_fields >= {"to", "cc", "bcc"}
    assert EmailNode.side_effects is True
    assert EmailNode.type_name == "email"
    bad: dict[str, Any]
    for bad in ({"to": ""}, {"to": []}, {"subject": "no to"}, {"to": "a@example.com", "tto": 1}):
        with pytest.raises(ValidationError):
            EmailConfig.model_validate(bad)
    schema = NODE.json_schema()
    assert schema["required"] == ["to"]
    assert set(schema["properties"]) >= {"to", "subject", "body", "cc", "bcc", "html"}


# --- development backends -----------------------------------------------------


async def test_file_backend_writes_a_readable_eml(tmp_path: Path) -> None:
    settings = Settings(email_backend="file", data_dir=tmp_path, email_from=SENDER)
    mailer = Mailer(settings)
    ctx = context(mailer, settings, execution_id="run-9", node_id="notify")

    result = await send(
        ctx, to="ann@example.com", bcc="eve@example.com", subject="Héllo", body="Result: 42 ✓"
    )

    [path] = (tmp_path / "outbox").iterdir()
    assert path.suffix == ".eml"
    assert re.fullmatch(r"\d{8}T\d{12}Z-[0-9a-f]{32}_ductwork\.eml", path.name), path.name
    data = path.read_bytes()
    # Readable as is: UTF-8 headers and an 8-bit body, no base64 or encoded words.
    text = data.decode("utf-8")
    assert "Subject: Héllo" in text and "Result: 42 ✓" in text
    parsed = message_from_bytes(data, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Message-ID"] == result.output["message_id"] == make_message_id("run-9:notify")
    assert parsed["Bcc"] == "eve@example.com"
    assert result.output["backend"] == "file"
    assert not list((tmp_path / "outbox").glob(".tmp-*"))


async def test_file_backend_reports_an_unwritable_outbox(tmp_path: Path) -> None:
    (tmp_path / "outbox").write_text("a file where the outbox directory should be")
    settings = Settings(email_backend="file", data_dir=tmp_path, email_from=SENDER)
    mailer = Mailer(settings)
    with pytest.raises(NodeError, match="cannot write the message to"):
        await send(context(mailer, settings), to="ann@example.com", subject="s", body="b")


async def test_console_backend_prints_the_message(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings(email_backend="console", email_from=SENDER)
    mailer = Mailer(settings)
    ctx = context(mailer, settings)

    result = await send(
        ctx, to="ann@example.com", subject="Hi there", body="<p>Result: <i>42</i></p>", html=True
    )

    out = capsys.readouterr().out
    assert "Subject: Hi there" in out and "To: ann@example.com" in out
    assert f"Message-ID: {result.output['message_id']}" in out
    assert "--- text/plain ---\nResult: 42" in out
    assert "--- text/html ---\n<p>Result: <i>42</i></p>" in out
    assert out.startswith("-" * 79) and out.rstrip().endswith("-" * 79)
    assert result.output["backend"] == "console"


def test_html_to_text_skips_scripts_and_keeps_structure() -> None:
    html = (
        "<html><head><title>t</title><style>p{}</style></head><body>"
        "<p>Hello&nbsp;<b>Ann</b>,</p><script>alert(1)</script>"
        "<p>line<br>break</p><table><tr><td>a</td><td>b</td></tr></table></body></html>"
    )
    assert html_to_text(html) == "Hello\xa0Ann,\n\nline\nbreak\n\na b\n"


def test_rendered_non_string_recipients_are_node_errors() -> None:
    # A native `{{ expr }}` may render to anything; the node names what it got.
    with pytest.raises(NodeError, match=r"^bcc\[1\]: expected an email address, got int 42"):
        parse_addresses("bcc", ["ann@example.com", 42])
    with pytest.raises(NodeError, match=r"^to: expected an email address or a list"):
        parse_addresses("to", {"email": "ann@example.com"})
    assert parse_addresses("cc", None) == []
