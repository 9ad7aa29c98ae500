"""Outbound HTTP for nodes (webhook, data-source `api`), guarded against SSRF.

A workflow author chooses the URLs, so without a guard any workflow could read
the cloud metadata service (169.254.169.254), the database on localhost or an
admin panel on the private network. Every connection therefore goes through
`GuardedBackend.connect_tcp` (in `http_transport`), which resolves the host itself, refuses the
connection when *any* resolved address is internal (loopback, private,
link-local, multicast, reserved, unspecified, or one of those wrapped in an
IPv4-mapped, 6to4 or NAT64 IPv6 address) and then connects to the very address
it checked. Checking at connect time, on the address used, means:

- no DNS rebinding window: the name is resolved once per connection and never
  again by anyone else (httpx/anyio get an IP literal);
- redirects are re-checked for free: each hop to a new origin opens a new
  connection, which passes through the same check;
- pooled keep-alive connections were vetted when they were opened.

Environment proxies are ignored (`trust_env=False`): through a proxy the proxy
would resolve the name and the check would only see the proxy's address.
`http_allow_private_networks` or `http_allowed_hosts` (host or host:port) lift
the check, e.g. for an internal API or for tests against 127.0.0.1.

Redirects are followed here, not by httpx, so the scheme of every hop is
checked and the hop count is bounded by `http_max_redirects`. A hop to another
origin (scheme, host or port) drops Authorization, Proxy-Authorization and every
header the caller names in `sensitive_headers` (those a credential set): httpx
itself strips only Authorization and Cookie, so an `X-API-Key` would otherwise
follow the redirect to whoever it points at. Bodies are
streamed and the read is abandoned past `http_max_response_bytes` (measured
after content decoding, so a gzip bomb is stopped too). `timeout` bounds the
whole exchange (all hops and the full body), not just each socket read, so a
server dripping one byte per second cannot hold a worker.
"""

from __future__ import annotations

import asyncio
import base64
import codecs
import functools
import ipaddress
import socket
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from ductwork import __version__
from ductwork.engine.templating import has_template_syntax
from ductwork.nodes.base import NodeError, RetryableError
from ductwork.security.credential_types import BasicData, BearerData, CredentialData, HttpHeaderData
from ductwork.settings import Settings

if TYPE_CHECKING:
    from http.cookiejar import CookieJar

    # httpx and httpcore (~0.1 s) load with the first request (`_shared_client`), or the
    # first URL shown: a process whose workflows send no HTTP never imports them.
    import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_METADATA = ipaddress.IPv4Address("169.254.169.254")
_ALLOWED_SCHEMES = frozenset({"http", "https"})
_BODY_EXCERPT = 200
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ALWAYS_SENSITIVE = ("Authorization", "Proxy-Authorization")
"""Dropped on every cross-origin redirect, whoever set them."""


class BlockedDestination(NodeError):
    """The URL points somewhere ductwork refuses to call (internal address or bad scheme)."""


@dataclass(slots=True)
class HttpResponse:
    """A fully read HTTP response."""

    status_code: int
    headers: dict[str, str]
    body: bytes
    url: str = ""
    history: list[str] = field(default_factory=list)
    """URLs of the redirect responses that led here, in order."""

    @property
    def media_type(self) -> str:
        """The Content-Type without parameters, lower-cased ("" when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str:
        """The declared charset if Python knows it, else utf-8."""
        for param in self.headers.get("content-type", "").split(";")[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "charset":
                name = value.strip().strip('"')
                try:
                    return codecs.lookup(name).name
                except LookupError:
                    break
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded as text (undecodable bytes replaced)."""
        return self.body.decode(self.charset, errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        return orjson.loads(self.body)

    def parsed(self) -> Any:
        """JSON when the body is JSON (declared or not), otherwise the text."""
        if self.body:
            try:
                return self.json()
            except ValueError:
                pass
        return self.text

    def excerpt(self, limit: int = _BODY_EXCERPT) -> str:
        """The start of the body as one line of text, for error messages."""
        text = " ".join(self.text.split())
        return text if len(text) <= limit else text[:limit] + "…"


def raise_for_status(response: HttpResponse, what: str) -> None:
    """Turn an error status into the node error the engine expects.

    429 and 5xx are transient (RetryableError, the engine's retry policy
    decides); other 4xx mean the request itself is wrong (NodeError).
    """
    status = response.status_code
    if status < 400:
        return
    message = f"{what} answered {status}"
    retry_after = response.headers.get("retry-after")
    if retry_after:
        message += f" (Retry-After: {retry_after})"
    if response.body:
        message += f": {response.excerpt()}"
    if status == 429 or status >= 500:
        raise RetryableError(message)
    raise NodeError(message)


def blocked_reason(address: IPAddress) -> str | None:
    """Why `address` is internal (a short phrase), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        # Wrapped IPv4 addresses reach the IPv4 host they embed; judge that one.
        if address.ipv4_mapped is not None:
            inner = blocked_reason(address.ipv4_mapped)
            return f"IPv4-mapped {inner}" if inner else None
        if address.sixtofour is not None:
            inner = blocked_reason(address.sixtofour)
            return f"6to4-wrapped {inner}" if inner else None
        if address in _NAT64:
            inner = blocked_reason(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
            return f"NAT64-wrapped {inner}" if inner else None
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address == _METADATA:
        return "cloud metadata address (link-local)"
    if address.is_link_local:
        return "link-local address"
    if address.is_multicast:
        return "multicast address"
    if address.is_private:
        return "private address"
    if address.is_reserved:
        return "reserved address"
    if not address.is_global:
        # e.g. 100.64.0.0/10 (carrier-grade NAT): neither "private" nor public.
        return "non-public address"
    return None


class _AddressGuard:
    """Resolves a host and decides whether ductwork may connect to it."""

    def __init__(self, allow_private: bool, allowed_hosts: Iterable[str]) -> None:
        self.allow_private = allow_private
        self.allowed_hosts = frozenset(_normalise_host_entry(entry) for entry in allowed_hosts)

    def host_is_allowed(self, host: str, port: int) -> bool:
        """True when settings exempt this host (or host:port) from the check."""
        if self.allow_private:
            return True
        host = host.lower().rstrip(".")
        shown = f"[{host}]" if ":" in host else host
        return bool({host, f"{shown}:{port}"} & self.allowed_hosts)

    def unix_socket_refused(self) -> BlockedDestination:
        """The error for a connection to a unix socket: never reachable from workflows."""
        return BlockedDestination("unix sockets are not reachable from workflows")

    async def resolve(self, host: str, port: int) -> list[str]:
        """The addresses to connect to, in resolver order; raises BlockedDestination."""
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
            )
        except socket.gaierror as exc:
            import httpcore

            raise httpcore.ConnectError(f"could not resolve {host!r}: {exc.strerror}") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        if not addresses:
            import httpcore

            raise httpcore.ConnectError(f"could not resolve {host!r}: no addresses")
        if self.host_is_allowed(host, port):
            return addresses
        for address in addresses:
            # A scope id ("fe80::1%eth0") is not part of the address proper.
            reason = blocked_reason(ipaddress.ip_address(address.split("%", 1)[0]))
            if reason is not None:
                raise BlockedDestination(_blocked_message(host, port, address, reason))
        return addresses


def _normalise_host_entry(entry: str) -> str:
    entry = entry.strip().lower()
    if entry.count(":") > 1 and not entry.startswith("["):
        return entry  # a bare IPv6 address
    return entry.rstrip(".")


def _blocked_message(host: str, port: int, address: str, reason: str) -> str:
    target = host if host == address else f"{host!r} (resolves to {address})"
    shown = f"[{host}]" if ":" in host else host
    return (
        f"refused to connect to {target}: it is a {reason}, and requests to internal "
        f"networks are blocked. To allow it, add '{shown}' or '{shown}:{port}' to "
        f"DUCTWORK_HTTP_ALLOWED_HOSTS, or set DUCTWORK_HTTP_ALLOW_PRIVATE_NETWORKS=true"
    )


def _no_cookies() -> CookieJar:
    # The client is shared by every workflow of the process: a cookie set by one
    # tenant's API must never ride along on another's request.
    # Imported here: http.cookiejar brings urllib.request and http.client to every cold
    # start, and only a process making HTTP calls needs it.
    from http.cookiejar import CookieJar, DefaultCookiePolicy

    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _query_value(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        # A list repeats the key (?tag=a&tag=b); nested structures go as JSON text.
        return [
            item if isinstance(item, str | int | float | bool) else _json_text(item)
            for item in value
        ]
    return _json_text(value)


def _json_text(value: Any) -> str:
    return orjson.dumps(value, default=_json_default).decode()


def auth_header(data: CredentialData) -> tuple[str, str]:
    """The (name, value) header an http_header, bearer or basic credential sends."""
    if isinstance(data, HttpHeaderData):
        return data.name, data.value
    if isinstance(data, BearerData):
        return "Authorization", f"Bearer {data.token}"
    if isinstance(data, BasicData):
        token = base64.b64encode(f"{data.username}:{data.password}".encode()).decode("ascii")
        return "Authorization", f"Basic {token}"
    raise TypeError(f"{type(data).__name__} is not an HTTP authentication credential")


def with_header(headers: Mapping[str, str], name: str, value: str) -> dict[str, str]:
    """`headers` with `name` set to `value`, replacing any spelling of it (names are
    case-insensitive): a credential's header wins over one written in the config."""
    lowered = name.lower()
    merged = {key: item for key, item in headers.items() if key.lower() != lowered}
    merged[name] = value
    return merged


def check_http_url(value: str, field_name: str) -> str:
    """For config validation: refuse a URL that is plainly not http(s) (templated ones pass)."""
    if not has_template_syntax(value) and not value.strip().lower().startswith(
        ("http://", "https://")
    ):
        raise ValueError(f"{field_name} must be an http:// or https:// URL")
    return value


def display_url(url: str | httpx.URL) -> str:
    """The URL without credentials, query or fragment: safe for messages and logs.

    Query strings and userinfo often carry API keys.
    """
    return _display_text(str(url))


@functools.lru_cache(maxsize=512)
def _display_text(url: str) -> str:
    # Parsing and rebuilding a URL twice per call was a visible part of a webhook
    # call's CPU; a workflow calls the same few URLs over and over.
    import httpx

    parsed = httpx.URL(url)
    parsed = parsed.copy_with(query=None, fragment=None)
    return str(parsed.copy_with(userinfo=b"") if parsed.userinfo else parsed)


class GuardedHttpClient:
    """The process's one outbound HTTP client, with the SSRF guard, size cap and deadline."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._guard = _AddressGuard(
            settings.http_allow_private_networks, settings.http_allowed_hosts
        )
        self._client: httpx.AsyncClient | None = None

    def _shared_client(self) -> httpx.AsyncClient:
        # Created on first use, inside the event loop that will drive it.
        if self._client is None:
            import httpx

            from ductwork.clients.http_transport import GuardedTransport

            limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
            self._client = httpx.AsyncClient(
                transport=GuardedTransport(self._guard, limits),
                follow_redirects=False,
                trust_env=False,
                cookies=_no_cookies(),
                headers={"User-Agent": f"ductwork/{__version__}"},
            )
        return self._client

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | str | None = None,
        # A per-call budget for the whole exchange, enforced with asyncio.timeout inside.
        timeout: float | None = None,  # noqa: ASYNC109
        sensitive_headers: Collection[str] = (),
    ) -> HttpResponse:
        """Send a request, following checked redirects, and read the capped body.

        `sensitive_headers`: names of headers that carry a secret (a credential's);
        they, Authorization and Proxy-Authorization are not sent on past a
        redirect to another origin.

        Raises BlockedDestination for internal addresses and non-http(s) URLs,
        RetryableError for timeouts and connection failures, NodeError for a
        body over the size cap, too many redirects or a malformed request.
        """
        if json is not None and content is not None:
            raise NodeError("give either a JSON body or raw content, not both")
        total = self._settings.http_timeout_seconds if timeout is None else timeout
        send_headers = {str(key): str(value) for key, value in (headers or {}).items()}
        body: bytes | str | None = content
        if json is not None:
            try:
                body = orjson.dumps(json, default=_json_default)
            except TypeError as exc:
                raise NodeError(f"request body is not JSON serialisable: {exc}") from None
            if not any(key.lower() == "content-type" for key in send_headers):
                send_headers["Content-Type"] = "application/json"
        client = self._shared_client()
        import httpx

        try:
            target = httpx.URL(url)
            if params:
                # httpx's `params=` replaces the URL's own query; merge instead, so
                # "https://x/hook?token=abc" keeps its token.
                target = target.copy_merge_params(
                    {key: _query_value(value) for key, value in params.items()}
                )
            request = client.build_request(
                method.upper(),
                target,
                headers=send_headers,
                content=body,
                timeout=httpx.Timeout(total),
            )
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise NodeError(f"invalid request to {url!r}: {exc}") from None
        _check_scheme(request.url)
        try:
            async with asyncio.timeout(total):
                return await self._exchange(
                    client, request, (*_ALWAYS_SENSITIVE, *sensitive_headers)
                )
        except TimeoutError:
            raise RetryableError(
                f"{request.method} {display_url(request.url)} timed out after {total:g} s"
            ) from None

    async def _exchange(
        self, client: httpx.AsyncClient, request: httpx.Request, sensitive: Collection[str]
    ) -> HttpResponse:
        import httpx

        history: list[str] = []
        while True:
            what = f"{request.method} {display_url(request.url)}"
            try:
                response = await client.send(request, stream=True)
            except BlockedDestination as exc:
                if history:
                    raise BlockedDestination(f"redirect from {history[-1]}: {exc}") from None
                raise
            except httpx.TimeoutException as exc:
                raise RetryableError(f"{what} timed out ({type(exc).__name__})") from None
            except httpx.TransportError as exc:
                raise RetryableError(f"{what} failed: {exc or type(exc).__name__}") from None
            try:
                redirect = response.next_request
                if redirect is not None:
                    history.append(display_url(request.url))
                    if len(history) > self._settings.http_max_redirects:
                        raise NodeError(
                            f"{what}: too many redirects (more than "
                            f"{self._settings.http_max_redirects}, DUCTWORK_HTTP_MAX_REDIRECTS)"
                        )
                    _check_scheme(redirect.url, redirected_from=history[-1])
                    if _origin(redirect.url) != _origin(request.url):
                        # Once dropped they stay dropped: later hops copy these headers.
                        for name in sensitive:
                            redirect.headers.pop(name, None)
                    request = redirect
                    continue
                return HttpResponse(
                    status_code=response.status_code,
                    headers=dict(response.headers.items()),
                    body=await self._read_capped(response, what),
                    url=str(response.url),
                    history=history,
                )
            except httpx.TimeoutException as exc:
                raise RetryableError(f"{what} timed out ({type(exc).__name__})") from None
            except httpx.DecodingError as exc:
                raise NodeError(f"{what}: could not decode the response body: {exc}") from None
            except httpx.TransportError as exc:
                raise RetryableError(f"{what} failed while reading: {exc}") from None
            finally:
                await response.aclose()

    async def _read_capped(self, response: httpx.Response, what: str) -> bytes:
        cap = self._settings.http_max_response_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise NodeError(_too_large(what, cap, f"Content-Length is {declared}"))
        body = bytearray()
        async for chunk in response.aiter_bytes():
            if len(body) + len(chunk) > cap:
                raise NodeError(_too_large(what, cap, "stopped reading"))
            body += chunk
        return bytes(body)

    async def close(self) -> None:
        """Close pooled connections; the next request opens a new client."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


def _too_large(what: str, cap: int, detail: str) -> str:
    return (
        f"{what}: response body is over the limit of {cap} bytes ({detail}); "
        f"raise DUCTWORK_HTTP_MAX_RESPONSE_BYTES to accept larger responses"
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _check_scheme(url: httpx.URL, *, redirected_from: str | None = None) -> None:
    if url.scheme in _ALLOWED_SCHEMES and url.host:
        return
    prefix = f"redirect from {redirected_from} to" if redirected_from else "refused"
    shown = display_url(url)
    if url.scheme in _ALLOWED_SCHEMES:
        raise BlockedDestination(f"{prefix} {shown}: the URL has no host")
    raise BlockedDestination(
        f"{prefix} {shown}: only http and https URLs are allowed, not {url.scheme or 'none'}"
    )


__all__ = [
    "BlockedDestination",
    "GuardedHttpClient",
    "HttpResponse",
    "auth_header",
    "blocked_reason",
    "check_http_url",
    "display_url",
    "raise_for_status",
    "with_header",
]
