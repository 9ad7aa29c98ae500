"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in its own thread.

It records every accepted message (envelope and parsed message), counts the
client connections it has seen, can require AUTH, and can be told to answer
the next MAIL, RCPT or DATA command with a scripted reply (550, 451, ...).

    with running_smtp_server() as smtp:
        ...send to 127.0.0.1:smtp.port...
        assert smtp.messages[0].message["Subject"] == "Hello"
"""

from __future__ import annotations

import socket
import threading
import weakref
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

Command = Literal["MAIL", "RCPT", "DATA"]


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    message: EmailMessage
    peer: Any
    login: str | None
    """The AUTH user the session logged in as, if any."""


@dataclass
class _Handler:
    """aiosmtpd handler hooks; they run on the server's thread."""

    messages: list[ReceivedMessage] = field(default_factory=list)
    peers: list[Any] = field(default_factory=list)
    scripted: dict[str, deque[str]] = field(
        default_factory=lambda: {"MAIL": deque(), "RCPT": deque(), "DATA": deque()}
    )
    lock: threading.Lock = field(default_factory=threading.Lock)
    require_auth: bool = False

    def _next_scripted(self, command: str) -> str | None:
        with self.lock:
            queue = self.scripted[command]
            return queue.popleft() if queue else None

    async def handle_EHLO(
        self, server: SMTP, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.peers.append(session.peer)
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self._next_scripted("MAIL")
        if reply is not None:
            return reply
        if self.require_auth and not session.authenticated:
            # Enforced here rather than with aiosmtpd's auth_required, which warns
            # on every connection when AUTH is allowed without TLS.
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        reply = self._next_scripted("RCPT")
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Any, envelope: Any) -> str:
        reply = self._next_scripted("DATA")
        if reply is not None:
            return reply
        raw = cast(bytes, envelope.original_content)
        # Parse with Unix line ends, so parts read back as the text that was sent.
        parsed = message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        received = ReceivedMessage(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            message=parsed,
            peer=session.peer,
            login=login,
        )
        with self.lock:
            self.messages.append(received)
        return "250 Message accepted for delivery"


class _Authenticator:
    """Accepts exactly the configured user/password pairs (any mechanism)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def __call__(
        self, server: SMTP, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            user, password = auth_data.login.decode(), auth_data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=auth_data)
        return AuthResult(success=False, handled=False)


class _TrackingController(Controller):  # type: ignore[misc]
    """Remembers the SMTP protocol of each connection, so tests can drop them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.protocols: weakref.WeakSet[SMTP] = weakref.WeakSet()

    def factory(self) -> SMTP:
        smtp = cast(SMTP, super().factory())  # type: ignore[no-untyped-call]
        self.protocols.add(smtp)
        return smtp


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it from port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SmtpTestServer:
    """An aiosmtpd server on 127.0.0.1 that records what it receives.

    `users` turns on AUTH (LOGIN and PLAIN over plain text, which aiosmtpd
    allows with `auth_require_tls=False`) and makes it mandatory.
    """

    host = "127.0.0.1"

    def __init__(self, *, users: Mapping[str, str] | None = None, port: int | None = None) -> None:
        self._handler = _Handler(require_auth=bool(users))
        self._users = dict(users) if users else None
        self.port = port or 0
        self._controller: _TrackingController | None = None

    # --- lifecycle -------------------------------------------------------

    def start(self) -> None:
        """Start serving; binds a free port unless one was given."""
        kwargs: dict[str, Any] = {}
        if self._users is not None:
            kwargs.update(authenticator=_Authenticator(self._users), auth_require_tls=False)
        # aiosmtpd's readiness probe connects to the configured port, so port 0
        # cannot be handed to it: pick a free port first, retrying on the rare race.
        attempts = 1 if self.port else 5
        for attempt in range(attempts):
            port = self.port or free_port(self.host)
            controller = _TrackingController(self._handler, hostname=self.host, port=port, **kwargs)
            try:
                controller.start()
            except OSError:
                if attempt == attempts - 1:
                    raise
                continue
            self.port = port
            self._controller = controller
            return

    def stop(self) -> None:
        """Stop serving and close every client connection."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpTestServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- what was received ------------------------------------------------

    @property
    def messages(self) -> list[ReceivedMessage]:
        """Accepted messages, oldest first (a snapshot)."""
        with self._handler.lock:
            return list(self._handler.messages)

    @property
    def connection_count(self) -> int:
        """How many client connections said EHLO (the readiness probe does not)."""
        with self._handler.lock:
            return len(set(self._handler.peers))

    def clear(self) -> None:
        """Forget received messages and seen connections."""
        with self._handler.lock:
            self._handler.messages.clear()
            self._handler.peers.clear()

    # --- scripted failures -----------------------------------------------

    def reply_next(self, command: Command, reply: str, *, times: int = 1) -> None:
        """Answer the next `times` MAIL/RCPT/DATA commands with `reply`.

        `reply` is a full SMTP reply line, e.g. "550 5.1.1 No such user".
        """
        with self._handler.lock:
            self._handler.scripted[command].extend([reply] * times)

    def disconnect_clients(self, timeout: float = 15.0) -> None:
        """Close every open client connection from the server side, as an idle timeout would."""
        controller = self._controller
        if controller is None:
            return
        done = threading.Event()

        def close_all() -> None:
            for smtp in controller.protocols:
                if smtp.transport is not None:
                    with suppress(Exception):
                        smtp.transport.close()
            done.set()

        controller.loop.call_soon_threadsafe(close_all)
        if not done.wait(timeout):
            raise TimeoutError("SMTP test server did not close its connections in time")


@contextmanager
def running_smtp_server(
    *, users: Mapping[str, str] | None = None, port: int | None = None
) -> Iterator[SmtpTestServer]:
    """Run an `SmtpTestServer` for the duration of the block."""
    server = SmtpTestServer(users=users, port=port)
    server.start()
    try:
        yield server
    finally:
        server.stop()
