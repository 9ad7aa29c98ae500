"""Outgoing email: one `Mailer` per process, with a backend chosen by settings.

As in Django, each backend is a small class behind one interface and the
`email_backend` setting picks it:

- `smtp`: real delivery through aiosmtplib over one reused connection;
- `console`: prints each message to stdout, for development;
- `file`: writes each message as an `.eml` file under `data_dir/outbox`
  (the embedded default, so nothing leaves the machine until SMTP is set up).

Failures are reported as node errors: connection problems, timeouts and 4xx
replies are `RetryableError`; 5xx replies are `NodeError` carrying the
server's message.

Building messages (the `email` package's header registry and policies, an HTML parser
for the plain-text alternative) is in `mail_message`, imported where a message is built
or written: ~10 ms of a cold start that sends no mail.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
import tempfile
from abc import ABC, abstractmethod
from collections import OrderedDict
from contextlib import suppress
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

from ductwork.nodes.base import NodeError, RetryableError
from ductwork.security.credential_types import SmtpData
from ductwork.settings import Settings

if TYPE_CHECKING:
    from email.message import EmailMessage

    # Imported where mail is sent: a process that sends none never loads it.
    import aiosmtplib


class PartialDeliveryError(NodeError):
    """The server accepted the message for some recipients and refused others.

    Not retryable: a retry would deliver a second copy to those who got the first.
    """

    def __init__(self, message_id: str, refused: dict[str, tuple[int, str]]) -> None:
        details = "; ".join(f"{addr}: {code} {text}" for addr, (code, text) in refused.items())
        super().__init__(f"message {message_id} was sent, but the SMTP server refused {details}")
        self.message_id = message_id
        self.refused = refused


# --- backends ---------------------------------------------------------------


class EmailBackend(ABC):
    """Delivers built messages. One instance per process, shared by all runs."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> EmailBackend:
        """Build the backend from settings."""

    @abstractmethod
    async def send(self, message: EmailMessage) -> None:
        """Deliver one message (it already has From, To, Date and Message-ID)."""

    async def close(self) -> None:
        """Release connections; the backend may be used again afterwards."""
        return None


def readable(message: EmailMessage) -> str:
    """The message as a person would read it: headers, then each text part decoded."""
    lines = [f"{name}: {value}" for name, value in message.items()]
    lines.append("")
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        if message.is_multipart():
            lines.append(f"--- {content_type} ---")
        if part.get_content_maintype() == "text":
            lines.append(str(part.get_content()).rstrip("\n"))
        else:
            lines.append(f"[{len(part.get_payload(decode=True) or b'')} bytes]")
    return "\n".join(lines)


class ConsoleBackend(EmailBackend):
    """Prints each message to stdout (or the given stream) between rules."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        # Resolved at send time by default, so redirected or captured stdout is honoured.
        self._stream = stream

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleBackend:
        """The console backend needs no settings."""
        return cls()

    async def send(self, message: EmailMessage) -> None:
        """Print the message as one block (a single write, so blocks never interleave)."""
        stream = self._stream or sys.stdout
        rule = "-" * 79
        stream.write(f"{rule}\n{readable(message)}\n{rule}\n")
        stream.flush()


class FileBackend(EmailBackend):
    """Writes each message as an `.eml` file, named by time and Message-ID."""

    name = "file"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def from_settings(cls, settings: Settings) -> FileBackend:
        """Write into `data_dir/outbox`."""
        return cls(settings.data_dir / "outbox")

    async def send(self, message: EmailMessage) -> None:
        """Write the message off the event loop (disk may be slow)."""
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise NodeError(f"cannot write the message to {self.directory}: {exc}") from exc

    def _write(self, message: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        ident = re.sub(r"[^A-Za-z0-9._-]+", "_", str(message["Message-ID"] or "")).strip("_")
        path = self.directory / f"{stamp}-{ident or 'message'}.eml"
        from ductwork.clients.mail_message import READABLE_POLICY

        data = message.as_bytes(policy=READABLE_POLICY)
        # Write then rename, so whoever watches the outbox never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        return path


def _is_permanent(code: int) -> bool:
    return 500 <= code < 600


def _failure(text: str, *, permanent: bool) -> NodeError:
    return NodeError(text) if permanent else RetryableError(text)


class SmtpBackend(EmailBackend):
    """Real delivery over SMTP, on one connection kept open between sends.

    Opening a connection costs a TCP (and maybe TLS) handshake, EHLO and AUTH;
    a reused one costs only the mail transaction. Sends are serialized on the
    connection by a lock. If the server dropped the connection while idle, it
    is re-opened.
    """

    name = "smtp"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool = False,
        timeout: float = 30.0,
    ) -> None:
        if use_tls and start_tls:
            raise ValueError("SMTP over TLS (smtp_ssl) and STARTTLS are mutually exclusive")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.use_tls = use_tls
        self.start_tls = start_tls
        self.timeout = timeout
        self._smtp: aiosmtplib.SMTP | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.connections_opened = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpBackend:
        """Build from the `smtp_*` settings."""
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username or None,
            password=password,
            use_tls=settings.smtp_ssl,
            start_tls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )

    async def send(self, message: EmailMessage) -> None:
        """Send on the shared connection, opening or re-opening it as needed."""
        import aiosmtplib

        async with self._locked():
            try:
                await self._send_locked(message)
            except aiosmtplib.SMTPException as exc:
                raise self._translate(exc) from exc
            except ValueError as exc:
                # aiosmtplib refuses addresses it cannot put in an envelope.
                raise NodeError(f"cannot send the message: {exc}") from exc
            except (OSError, TimeoutError) as exc:
                self._discard()
                raise RetryableError(
                    f"SMTP server {self.host}:{self.port} unreachable: {exc}"
                ) from exc

    async def _send_locked(self, message: EmailMessage) -> None:
        import aiosmtplib

        reused = self._usable()
        smtp = await self._connection()
        try:
            errors, _ = await smtp.send_message(message)
        except aiosmtplib.SMTPServerDisconnected:
            self._discard()
            if not reused:
                raise
            # The server closed the idle connection before we noticed: the
            # transaction did not get through, so send it once on a fresh one.
            smtp = await self._connection()
            errors, _ = await smtp.send_message(message)
        if errors:
            refused = {addr: (resp.code, resp.message) for addr, resp in errors.items()}
            raise PartialDeliveryError(str(message["Message-ID"]), refused)

    def _locked(self) -> asyncio.Lock:
        # An asyncio.Lock belongs to one event loop; a process that runs several
        # loops one after another (CLI, tests) gets a fresh lock for each.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _usable(self) -> bool:
        return (
            self._smtp is not None
            and self._smtp.is_connected
            and self._loop is asyncio.get_running_loop()
        )

    async def _connection(self) -> aiosmtplib.SMTP:
        import aiosmtplib

        if self._usable():
            assert self._smtp is not None
            return self._smtp
        self._discard()
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            use_tls=self.use_tls,
            # False, not None: aiosmtplib's None means "upgrade when offered",
            # which would ignore an explicit smtp_starttls=false.
            start_tls=self.start_tls,
            timeout=self.timeout,
        )
        try:
            await smtp.connect()
        except BaseException:
            smtp.close()
            raise
        self._smtp = smtp
        self._loop = asyncio.get_running_loop()
        self.connections_opened += 1
        return smtp

    def _discard(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            # The connection may belong to a loop that is gone; closing it is best effort.
            with suppress(Exception):
                smtp.close()

    def _translate(self, exc: aiosmtplib.SMTPException) -> NodeError:
        import aiosmtplib

        where = f"SMTP server {self.host}:{self.port}"
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            refusals = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
            permanent = any(_is_permanent(r.code) for r in exc.recipients)
            return _failure(f"{where} refused every recipient: {refusals}", permanent=permanent)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            if isinstance(exc, aiosmtplib.SMTPConnectResponseError | aiosmtplib.SMTPHeloError):
                self._discard()
            text = f"{where} rejected the message: {exc.code} {exc.message}"
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                self._discard()
                text = f"{where} refused the login of {self.username!r}: {exc.code} {exc.message}"
            return _failure(text, permanent=_is_permanent(exc.code))
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            return NodeError(f"{where} cannot send this message: {exc}")
        # Timeouts, refused or dropped connections: the state of the connection is unknown.
        self._discard()
        return RetryableError(f"{where} unreachable: {exc}")

    async def close(self) -> None:
        """Say QUIT and close the connection, if one is open."""
        import aiosmtplib

        async with self._locked():
            smtp = self._smtp
            if smtp is not None and self._usable():
                with suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await smtp.quit()
            self._discard()


BACKENDS: dict[str, type[EmailBackend]] = {
    backend.name: backend for backend in (ConsoleBackend, FileBackend, SmtpBackend)
}
"""Backends by `email_backend` setting value."""


CREDENTIAL_BACKENDS = 16
"""SMTP connections kept open for `smtp` credentials (per process), least recently used
closed first."""


class Mailer:
    """Sends email through the backend the settings name; fills in what a message lacks.

    A node with an `smtp` credential sends through that server instead (`send(...,
    smtp=data)`): one reused connection per distinct credential, at most
    CREDENTIAL_BACKENDS of them; the settings stay the default for every other node.
    """

    def __init__(self, settings: Settings, *, backend: EmailBackend | None = None) -> None:
        self._timeout = settings.smtp_timeout_seconds
        self._credential_backends: OrderedDict[str, SmtpBackend] = OrderedDict()
        self.default_sender = settings.email_from
        if backend is None:
            try:
                backend_class = BACKENDS[settings.email_backend]
            except KeyError:
                raise ValueError(
                    f"unknown email backend {settings.email_backend!r}; "
                    f"expected one of {', '.join(sorted(BACKENDS))}"
                ) from None
            backend = backend_class.from_settings(settings)
        self.backend = backend

    @property
    def backend_name(self) -> str:
        """The backend in use: "smtp", "console" or "file"."""
        return self.backend.name

    def sender_for(self, smtp: SmtpData | None) -> str:
        """The default From: the credential's `from_address`, else DUCTWORK_EMAIL_FROM."""
        if smtp is not None and smtp.from_address:
            return smtp.from_address
        return self.default_sender

    def _credential_backend(self, smtp: SmtpData) -> SmtpBackend:
        # Keyed by a hash of the whole data (password included, never stored as is):
        # a credential replaced by PUT gets a connection of its own.
        key = hashlib.sha256(smtp.model_dump_json().encode()).hexdigest()
        backend = self._credential_backends.get(key)
        if backend is not None:
            self._credential_backends.move_to_end(key)
            return backend
        try:
            backend = SmtpBackend(
                host=smtp.host,
                port=smtp.port,
                username=smtp.username or None,
                password=smtp.password,
                use_tls=smtp.ssl,
                start_tls=smtp.starttls and not smtp.ssl,
                timeout=self._timeout,
            )
        except ValueError as exc:
            raise NodeError(f"config.credential: {exc}") from None
        self._credential_backends[key] = backend
        while len(self._credential_backends) > CREDENTIAL_BACKENDS:
            _, evicted = self._credential_backends.popitem(last=False)
            evicted._discard()  # no QUIT: a send on it may still be finishing elsewhere
        return backend

    async def send(self, message: EmailMessage, *, smtp: SmtpData | None = None) -> str:
        """Deliver `message` and return its Message-ID.

        With `smtp` (an `smtp` credential's data) the message goes through that
        server, whatever the email_backend setting. From, Date and Message-ID are
        added when missing. Raises `NodeError` (5xx, bad message) or
        `RetryableError` (4xx, connection, timeout).
        """
        if message["From"] is None:
            message["From"] = self.sender_for(smtp)
        if message["Date"] is None:
            message["Date"] = format_datetime(datetime.now(UTC))
        if message["Message-ID"] is None:
            from ductwork.clients.mail_message import MESSAGE_ID_DOMAIN

            message["Message-ID"] = make_msgid(domain=MESSAGE_ID_DOMAIN)
        backend = self.backend if smtp is None else self._credential_backend(smtp)
        await backend.send(message)
        return str(message["Message-ID"])

    async def close(self) -> None:
        """Close the backends' connections (call at process shutdown)."""
        backends, self._credential_backends = self._credential_backends, OrderedDict()
        for backend in backends.values():
            await backend.close()
        await self.backend.close()
