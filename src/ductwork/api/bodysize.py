"""Request bodies larger than DUCTWORK_MAX_REQUEST_BYTES are refused with 413, unread.

A pure ASGI middleware, outside everything that reads a body:

- a `Content-Length` over the limit is answered at once, before a byte of the
  body is read (the server stops reading the socket; the connection is closed);
- a body of unknown length (`Transfer-Encoding: chunked`) is counted as the
  app reads it, and reading stops as soon as the total passes the limit: the
  read raises `RequestTooLarge`, answered 413 like any HTTP error.

Either way the answer is `413 {"detail": ...}` with `Connection: close`, so
the rest of the body is never read: the server drops the connection instead
of draining it.

`read_capped` is for routes with a limit of their own (webhooks, resume links).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ductwork.api.responses import JSON

SETTING = "DUCTWORK_MAX_REQUEST_BYTES"


def _detail(limit: int) -> str:
    return f"the request body is larger than {limit:,} bytes (the limit set by {SETTING})"


async def read_capped(request: Request, limit: int, too_large: Callable[[], Exception]) -> bytes:
    """A route's whole body under its own (smaller) limit: raises `too_large()` as soon as
    the body passes `limit` bytes, before reading when the announced length does."""
    length = request.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > limit:
        raise too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large()
    return bytes(body)


class RequestTooLarge(HTTPException):
    """The body read so far passed the limit (answered 413 by the app's HTTP error handler).

    An HTTPException so that FastAPI's body parsing re-raises it unchanged (any
    other error while reading a body becomes a bare 400).
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, _detail(limit), headers={"Connection": "close"})


class BodySizeLimit:
    """ASGI middleware: 413 for HTTP request bodies over `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope["headers"]:
            # The server has parsed the header already; a malformed one never gets here.
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send)
                return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except RequestTooLarge:
            # Raised where nothing turned it into a response (a middleware reading the body).
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        response = JSON(
            status_code=413,
            content={"detail": _detail(self.max_bytes)},
            headers={"Connection": "close"},
        )
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.raw_headers,
            }
        )
        await send({"type": "http.response.body", "body": response.body})
