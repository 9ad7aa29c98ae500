"""Building outgoing messages with the stdlib `email` package, and reading HTML as text.

Apart from `clients/mail.py` (the backends and the `Mailer`) because the `email`
package's policies and header registry and `html.parser` cost ~10 ms to import: a
process that never sends mail never loads them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email import policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from html.parser import HTMLParser

MESSAGE_ID_DOMAIN = "ductwork"


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib registry builds a new header class on every lookup (~30 µs each,
    a dozen per message: half the cost of building one); build each class once."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


MESSAGE_POLICY = policy.default.clone(header_factory=_CachingHeaderRegistry())
"""`email.policy.default`, with header classes built once instead of per header."""
# Human-readable output (console, .eml files): UTF-8 headers instead of RFC 2047 words.
READABLE_POLICY = MESSAGE_POLICY.clone(utf8=True)


# --- building messages ------------------------------------------------------


def make_message_id(seed: str, domain: str = MESSAGE_ID_DOMAIN) -> str:
    """A Message-ID derived from `seed`: the same seed always gives the same id.

    Seeded with a node's idempotency key, a retried or crash-re-run send
    carries the same Message-ID, so receivers can drop the duplicate.
    """
    digest = hashlib.sha256(seed.encode("utf-8")).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _one_line(text: str) -> str:
    # Header values cannot hold line breaks (the email package refuses them, which
    # also stops header injection); a templated subject may well contain some.
    return re.sub(r"\s*[\r\n]+\s*", " ", text).strip()


def build_message(
    *,
    to: Sequence[str],
    subject: str,
    body: str,
    sender: str,
    html: bool = False,
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    message_id: str | None = None,
) -> EmailMessage:
    """Build a message with the stdlib `email` package (policy `default`).

    Addresses may carry display names (`"Ann <ann@example.com>"`). An HTML
    body is sent as `multipart/alternative` with a plain-text rendering first,
    for clients that do not show HTML. Bcc is kept as a header: the SMTP
    backend puts those recipients in the envelope and strips the header.
    """
    message = EmailMessage(policy=MESSAGE_POLICY)
    message["From"] = sender
    message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    if bcc:
        message["Bcc"] = ", ".join(bcc)
    if reply_to:
        message["Reply-To"] = ", ".join(reply_to)
    message["Subject"] = _one_line(subject)
    message["Date"] = format_datetime(datetime.now(UTC))
    message["Message-ID"] = message_id or make_msgid(domain=MESSAGE_ID_DOMAIN)
    if html:
        message.set_content(html_to_text(body))
        message.add_alternative(body, subtype="html")
    else:
        message.set_content(body)
    return message


class _TextExtractor(HTMLParser):
    """Plain text out of HTML: block elements become line breaks, links keep their URL."""

    _BLOCKS = frozenset(
        {
            *("address", "article", "aside", "blockquote", "dd", "div", "dl", "dt"),
            *("fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "li"),
            *("h1", "h2", "h3", "h4", "h5", "h6", "main", "nav", "ol", "p", "pre"),
            *("section", "table", "tr", "ul"),
        }
    )
    _HIDDEN = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._hidden_depth = 0
        self._links: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth += 1
        elif tag == "br":
            self._parts.append("\n")
        elif tag in self._BLOCKS:
            self._parts.append("\n\n" if tag in {"p", "div", "table", "ul", "ol"} else "\n")
            if tag == "li":
                self._parts.append("- ")
        elif tag in {"td", "th"}:
            self._parts.append(" ")
        elif tag == "a":
            self._links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in self._BLOCKS:
            self._parts.append("\n")
        elif tag == "a" and self._links:
            href = self._links.pop()
            if href and not href.startswith(("#", "javascript:", "mailto:")):
                self._parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            # Collapse HTML whitespace only: a no-break space is content and stays.
            self._parts.append(re.sub(r"[ \t\r\n\f]+", " ", data))

    def text(self) -> str:
        lines = (line.strip(" ") for line in "".join(self._parts).split("\n"))
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def html_to_text(html: str) -> str:
    """A readable plain-text version of an HTML body (for the text/plain alternative)."""
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return extractor.text()
