"""The `email` node: sends one message through the process's `Mailer`.

Config (seed shape): `{"to": "{{email}}", "subject": "Hello", "body": "Result: {{outputs.ai1}}"}`.
`to`, `cc` and `bcc` take one address, a comma-separated string or a list;
a lone `{{ expr }}` there may yield a list. Addresses are checked after
rendering, so a bad one fails the node with the field and the value.

The Message-ID derives from the node's idempotency key: a retry or a crash
re-run sends the same Message-ID, and receivers can drop the duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, field_validator

from ductwork.clients.mail_message import build_message, make_message_id
from ductwork.engine.limits import WorkflowLimits
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    credential_field,
)
from ductwork.security.credential_types import SmtpData

Recipients = str | list[str]

# Separators between addresses: commas or semicolons outside quotes and angle brackets.
_ADDRESS_ITEM = re.compile(r'(?:"(?:[^"\\]|\\.)*"|<[^>]*>|[^,;"<])+')
_NAMED_ADDRESS = re.compile(r'^(?P<name>"(?:[^"\\]|\\.)*"|[^"<>]*?)\s*<(?P<addr>[^<>]*)>$')

# RFC 5322 "specials": a display name holding one must be quoted.
_NEEDS_QUOTES = re.compile(r'[][\\()<>@,:;".]')


class EmailConfig(NodeConfig):
    """What to send and to whom. String fields may hold `{{ }}` templates."""

    to: Recipients = Field(
        description="Recipient(s): one address, a comma-separated string or a list.",
        examples=["{{email}}", ["ann@example.com", "Bob <bob@example.com>"]],
    )
    subject: str = Field(default="", examples=["Hello"])
    body: str = Field(default="", examples=["Result: {{outputs.ai1}}"])
    cc: Recipients | None = None
    bcc: Recipients | None = Field(default=None, description="Hidden recipients.")
    reply_to: Recipients | None = None
    from_address: str | None = Field(
        default=None,
        description=(
            "Sender; defaults to the credential's from_address, else the "
            "DUCTWORK_EMAIL_FROM setting."
        ),
    )
    credential: str | None = credential_field("smtp: the server to send through")
    html: bool = Field(
        default=False,
        description=(
            "Send the body as HTML (with a text version); values inserted into the body "
            "by `{{ }}` are HTML-escaped (`| safe` inserts trusted markup as is)."
        ),
    )

    @field_validator("to")
    @classmethod
    def _has_recipient(cls, value: Recipients) -> Recipients:
        if not (value.strip() if isinstance(value, str) else value):
            raise ValueError("at least one recipient is required")
        return value


def _check_address(where: str, text: str) -> tuple[str, str]:
    """`text` as (bare address, header-ready `"Name" <user@host>` or `user@host`), or NodeError."""
    name = ""
    addr = text
    named = _NAMED_ADDRESS.match(text)
    if named:
        name = named["name"].strip()
        if len(name) >= 2 and name[0] == name[-1] == '"':
            name = re.sub(r"\\(.)", r"\1", name[1:-1])
        addr = named["addr"].strip()
    # email_validator (~30 ms with its DNS modules) loads with the first address checked.
    from email_validator import EmailNotValidError, validate_email

    try:
        info = validate_email(addr, check_deliverability=False)
    except EmailNotValidError as exc:
        raise NodeError(f"{where}: {text!r} is not a valid email address: {exc}") from None
    # The ASCII (punycode) form needs no SMTPUTF8 support from the server, when one exists.
    address = info.ascii_email or info.normalized
    if not name:
        return address, address
    if _NEEDS_QUOTES.search(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return address, f"{name} <{address}>"


def parse_addresses(field: str, value: Any) -> list[str]:
    """Every address in a rendered field (string, comma-separated string or list), checked.

    Duplicates are dropped; errors name the field (and the list index) and the value.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[tuple[str, Any]] = [(field, value)]
    elif isinstance(value, list | tuple):
        items = [(f"{field}[{index}]", item) for index, item in enumerate(value)]
    else:
        raise NodeError(
            f"{field}: expected an email address or a list of them, "
            f"got {type(value).__name__} {value!r}"
        )
    addresses: dict[str, str] = {}
    for where, item in items:
        if not isinstance(item, str):
            raise NodeError(
                f"{where}: expected an email address, got {type(item).__name__} {item!r}"
            )
        pieces = [piece.strip() for piece in _ADDRESS_ITEM.findall(item)]
        leftover = _ADDRESS_ITEM.sub("", item).replace(",", "").replace(";", "").strip()
        if leftover:
            # Stray quotes or brackets the splitter could not pair up.
            raise NodeError(f"{where}: {item!r} is not a valid email address list")
        for piece in pieces:
            if piece:
                bare, formatted = _check_address(where, piece)
                addresses.setdefault(bare.lower(), formatted)
    return list(addresses.values())


RECIPIENT_FIELDS = ("to", "cc", "bcc")


def _written_addresses(value: Recipients | None) -> set[str]:
    """The addresses written in a field as saved (not validated: that happens at run time)."""
    if value is None:
        return set()
    items = [value] if isinstance(value, str) else value
    return {
        piece.strip().lower()
        for item in items
        if isinstance(item, str)
        for piece in _ADDRESS_ITEM.findall(item)
        if piece.strip()
    }


def recipients_issue(counts: list[tuple[str, int]], limit: int) -> tuple[str, str] | None:
    """(field, message) when to + cc + bcc name more than `limit` recipients.

    The field named is the one that takes the total past the limit.
    """
    total = 0
    for field, count in counts:
        total += count
        if total > limit:
            written = sum(count for _, count in counts)
            return (
                field,
                f"to + cc + bcc name {written} recipients; the limit is {limit} "
                "(DUCTWORK_MAX_EMAIL_RECIPIENTS)",
            )
    return None


class EmailNode(NodeType[EmailConfig]):
    """Sends an email through the configured backend (SMTP, console or file)."""

    type_name = "email"
    description = "Send an email (SMTP, or console/file for development)."
    config_model = EmailConfig
    native_fields: ClassVar[frozenset[str]] = frozenset({"to", "cc", "bcc", "reply_to"})
    side_effects: ClassVar[bool] = True

    def limit_issues(
        self,
        config: EmailConfig,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        """Recipients written in the saved config past DUCTWORK_MAX_EMAIL_RECIPIENTS
        (templated fields count when the node runs)."""
        if limits.max_email_recipients is None:
            return []
        counts = [
            (field, len(_written_addresses(getattr(config, field))))
            for field in RECIPIENT_FIELDS
            if field not in rendered_later
        ]
        issue = recipients_issue(counts, limits.max_email_recipients)
        return [] if issue is None else [issue]

    def html_fields_for(self, config: Mapping[str, Any]) -> frozenset[str]:
        """An HTML body escapes what templates insert, so data cannot inject markup."""
        return frozenset({"body"}) if config.get("html") is True else frozenset()

    async def run(self, config: EmailConfig, ctx: NodeContext) -> NodeResult:
        """Check the rendered addresses, build the message and send it."""
        to = parse_addresses("to", config.to)
        if not to:
            raise NodeError(f"to: no recipient in {config.to!r}")
        cc = parse_addresses("cc", config.cc)
        bcc = parse_addresses("bcc", config.bcc)
        reply_to = parse_addresses("reply_to", config.reply_to)
        limit = ctx.services.settings.max_email_recipients
        issue = recipients_issue([("to", len(to)), ("cc", len(cc)), ("bcc", len(bcc))], limit)
        if issue is not None:
            raise NodeError(f"config.{issue[0]}: {issue[1]}")
        mailer = ctx.services.mail
        smtp: SmtpData | None = None
        if config.credential is not None:
            data = ctx.credential(config.credential, ("smtp",)).data
            assert isinstance(data, SmtpData)
            smtp = data
        sender = mailer.sender_for(smtp)
        if config.from_address is not None and config.from_address.strip():
            senders = parse_addresses("from_address", config.from_address)
            if len(senders) != 1:
                raise NodeError(f"from_address: expected one address, got {config.from_address!r}")
            sender = senders[0]

        message = build_message(
            to=to,
            subject=config.subject,
            body=config.body,
            html=config.html,
            cc=cc,
            bcc=bcc,
            reply_to=reply_to,
            sender=sender,
            message_id=make_message_id(ctx.idempotency_key),
        )
        message_id = await mailer.send(message, smtp=smtp)
        recipients = len(to) + len(cc) + len(bcc)
        backend = "smtp" if smtp is not None else mailer.backend_name
        via = f"{backend} (credential {config.credential!r})" if smtp is not None else backend
        ctx.log(f"email {message_id} sent to {recipients} recipient(s) via {via}")
        return NodeResult(
            output={
                "message_id": message_id,
                "to": to,
                "subject": str(message["Subject"]),
                "backend": backend,
            }
        )
