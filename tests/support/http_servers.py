"""A real HTTP server on 127.0.0.1 for tests: scripted replies, recorded requests.

`RecordingHttpServer` runs the standard library's `ThreadingHTTPServer` in a
background thread on a free port. Every request is recorded when it arrives
(before any delay), so a test can see a call that is still in flight — what
crash-resume tests need to kill a worker mid-webhook and then check how often
the endpoint was hit and with which Idempotency-Key.

Replies are scripted per path: `script("/hook", Reply(status=503), Reply())`
answers 503 to the first call and 200 to every later one (the last reply
repeats). Unscripted paths answer 200 with a JSON echo of the request.
`set_delay(path, s)` adds latency to every reply on a path, `hold(path)` keeps
replies waiting until `release(path)`. Delays and holds end at once on
`stop()`, so a slow reply never slows down test teardown.

    with RecordingHttpServer() as server:
        server.script("/hook", Reply(status=201, body={"ok": True}))
        ... call server.url("/hook") ...
        assert server.calls("/hook") == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Reply:
    """One scripted response."""

    status: int = 200
    body: Any = None
    """bytes or str are sent as they are; anything else (dict, list, ...) as JSON."""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before sending the status line."""
    size: int | None = None
    """Send a body of this many bytes (b"x" repeated) instead of `body`."""
    chunked: bool = False
    """Send the body with chunked encoding (no Content-Length)."""
    chunk_interval: float = 0.0
    """Pause between body chunks: a slow, dripping body."""
    chunk_size: int = _CHUNK

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        """A redirect to `location`."""
        return cls(status=status, headers={"Location": location})


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-cased names."""
    body: bytes
    received_at: float
    """time.monotonic() on arrival."""
    peer: tuple[str, int] = ("", 0)
    """The client's address and port: equal ports mean a reused connection."""

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")


class RecordingHttpServer:
    """A scriptable, recording HTTP/1.1 server in a thread; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._scripts: dict[str, list[Reply]] = {}
        self._delays: dict[str, float] = {}
        self._gates: dict[str, threading.Event] = {}
        self._requests: list[RecordedRequest] = []
        self._completed: dict[str, int] = {}
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # Lifecycle.

    def start(self) -> RecordingHttpServer:
        """Bind a free port and serve in a daemon thread."""
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer((self._host, 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"http-test-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, release delayed replies and drop open connections."""
        self._stopping.set()
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> RecordingHttpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # Addresses.

    @property
    def port(self) -> int:
        assert self._server is not None, "server is not started"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def url(self, path: str = "/") -> str:
        """The absolute URL of `path` on this server."""
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # Scripting.

    def script(self, path: str, *replies: Reply) -> None:
        """Answer calls to `path` with these replies in turn; the last one repeats."""
        if not replies:
            raise ValueError("script() needs at least one reply")
        with self._lock:
            self._scripts[path] = list(replies)

    def set_delay(self, path: str, seconds: float) -> None:
        """Delay every reply on `path` by `seconds` (added to the reply's own delay)."""
        with self._lock:
            self._delays[path] = seconds

    def hold(self, path: str) -> None:
        """Keep replies on `path` waiting (requests are still recorded) until `release`."""
        with self._lock:
            self._gates[path] = threading.Event()

    def release(self, path: str) -> None:
        """Let held replies on `path` go, and stop holding new ones."""
        with self._lock:
            gate = self._gates.pop(path, None)
        if gate is not None:
            gate.set()

    # Inspection.

    def requests(self, path: str | None = None) -> list[RecordedRequest]:
        """Requests received so far (for one path, or all), in arrival order."""
        with self._lock:
            return [r for r in self._requests if path is None or r.path == path]

    def calls(self, path: str | None = None) -> int:
        """How many requests arrived (including ones still being answered)."""
        return len(self.requests(path))

    def completed(self, path: str) -> int:
        """How many replies on `path` were sent (counted as their last bytes go out)."""
        with self._lock:
            return self._completed.get(path, 0)

    def wait_for_calls(
        self, path: str | None, count: int, timeout: float = 15.0
    ) -> list[RecordedRequest]:
        """Block until `count` requests arrived (on `path`, or anywhere); raise on timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                matching = [r for r in self._requests if path is None or r.path == path]
                if len(matching) >= count:
                    return matching
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"expected {count} request(s) to {path or 'any path'} within "
                        f"{timeout} s, got {len(matching)}"
                    )
                self._arrived.wait(remaining)

    async def wait_for_calls_async(
        self,
        path: str | None,
        count: int,
        timeout: float = 15.0,  # noqa: ASYNC109 - same signature as wait_for_calls
    ) -> list[RecordedRequest]:
        """`wait_for_calls` for async tests (waits in a thread, not on the loop)."""
        return await asyncio.to_thread(self.wait_for_calls, path, count, timeout)

    def reset(self) -> None:
        """Forget recorded requests, scripts, delays and holds."""
        with self._lock:
            gates = list(self._gates.values())
            self._requests.clear()
            self._scripts.clear()
            self._delays.clear()
            self._gates.clear()
            self._completed.clear()
        for gate in gates:
            gate.set()

    # Used by the handler thread.

    def _arrive(
        self, request: RecordedRequest
    ) -> tuple[Reply | None, float, threading.Event | None]:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            script = self._scripts.get(request.path)
            reply = None
            if script:
                reply = script.pop(0) if len(script) > 1 else script[0]
            return reply, self._delays.get(request.path, 0.0), self._gates.get(request.path)

    def _done(self, path: str) -> None:
        with self._lock:
            self._completed[path] = self._completed.get(path, 0) + 1

    def _track(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _wait(self, seconds: float) -> bool:
        """Sleep in the handler thread; False when the server is stopping."""
        return not self._stopping.wait(seconds) if seconds > 0 else not self._stopping.is_set()


def _echo(request: RecordedRequest) -> dict[str, Any]:
    try:
        parsed = request.json() if request.body else None
    except orjson.JSONDecodeError:
        parsed = None
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "headers": request.headers,
        "body": request.text,
        "json": parsed,
    }


def _make_handler(server: RecordingHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle on, the body waits
        # for the client's delayed ACK and every reply takes ~40 ms.
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            server._track(self.connection, True)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                server._track(self.connection, False)

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return bytes(body)
                    body += self.rfile.read(size)
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            split = urlsplit(self.path)
            request = RecordedRequest(
                method=self.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={name.lower(): value for name, value in self.headers.items()},
                body=self._read_body(),
                received_at=time.monotonic(),
                peer=(str(self.client_address[0]), int(self.client_address[1])),
            )
            reply, extra_delay, gate = server._arrive(request)
            if reply is None:
                reply = Reply(body=_echo(request))
            if not server._wait(reply.delay + extra_delay):
                self.close_connection = True
                return
            if gate is not None:
                while not gate.wait(0.05):
                    if server._stopping.is_set():
                        self.close_connection = True
                        return
            try:
                self._send(reply, request.path)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _send(self, reply: Reply, path: str) -> None:
            headers = {name.lower(): value for name, value in reply.headers.items()}
            if reply.size is not None:
                body = b"x" * reply.size
            elif isinstance(reply.body, bytes):
                body = reply.body
            elif isinstance(reply.body, str):
                body = reply.body.encode()
                headers.setdefault("content-type", "text/plain; charset=utf-8")
            elif reply.body is None:
                body = b""
            else:
                body = orjson.dumps(reply.body)
                headers.setdefault("content-type", "application/json")
            self.send_response(reply.status)
            for name, value in headers.items():
                self.send_header(name, value)
            if reply.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(body)))
            pieces = [
                body[start : start + reply.chunk_size]
                for start in range(0, len(body), reply.chunk_size)
            ]
            if reply.chunked:
                pieces = [b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces]
                pieces[-1:] = [(pieces[-1] if pieces else b"") + b"0\r\n\r\n"]
            if self.command == "HEAD":
                pieces = []
            # Count the reply as completed *before* its last bytes leave, so a client
            # that has the whole response always sees completed() include it.
            if not pieces:
                server._done(path)
            self.end_headers()
            for index, piece in enumerate(pieces):
                if index and not server._wait(reply.chunk_interval):
                    self.close_connection = True
                    return
                if index == len(pieces) - 1:
                    server._done(path)
                self.wfile.write(piece)
                self.wfile.flush()

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    return Handler


__all__ = ["RecordedRequest", "RecordingHttpServer", "Reply"]
