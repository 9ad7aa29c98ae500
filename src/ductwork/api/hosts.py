"""Allowed hosts: a request whose Host header is not ours gets 400 (DNS rebinding).

A page on any site can make a browser reach a loopback server through a name it
controls (`evil.example` resolving to 127.0.0.1); the Host header still says
`evil.example`, so refusing unknown hosts closes that door. Default: the loopback
names when the server is bound to a loopback address, anything otherwise (a
warning is logged at start: set DUCTWORK_ALLOWED_HOSTS).
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from ductwork.settings import Settings

log = logging.getLogger("ductwork.api")

LOOPBACK_HOSTS: Final = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or name the server binds) is loopback only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allowed_hosts(settings: Settings) -> list[str]:
    """The Host values to accept: the setting, else loopback names or `*`."""
    if settings.allowed_hosts:
        return [host.strip().lower() for host in settings.allowed_hosts if host.strip()]
    if is_loopback(settings.host):
        return list(LOOPBACK_HOSTS)
    return ["*"]


def host_name(header: str) -> str:
    """The Host header without its port (IPv6 brackets removed), lower-cased."""
    value = header.strip().lower()
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def host_allowed(name: str, patterns: list[str]) -> bool:
    """Whether a host name matches one of `patterns` (exact, `*`, or `*.example.com`)."""
    for pattern in patterns:
        if pattern == "*" or pattern == name:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


class AllowedHosts:
    """ASGI middleware: 400 for HTTP (a WebSocket handshake is refused) with an unknown Host."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.any = "*" in hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.any or scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        header = ""
        for name, value in scope.get("headers", ()):
            if name == b"host":
                header = value.decode("latin-1")
                break
        if host_allowed(host_name(header), self.hosts):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008, "reason": "host not allowed"})
            return
        body = b'{"detail":"Host header not allowed (DUCTWORK_ALLOWED_HOSTS)"}'
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
