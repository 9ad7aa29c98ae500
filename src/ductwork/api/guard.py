"""Every route checks: who is asking (authentication) and whether they may (permission).

`ROUTE_PERMISSIONS` is the ONE table of what each route needs, keyed by (method,
path template); a test fails when a route of `create_app()` is missing from it, and
a route missing at run time is refused (403): deny by default. `WEBSOCKET` is the
method of WebSocket routes; HEAD needs what GET needs.

`AuthGuard` is a pure ASGI middleware, so it covers HTTP, Server-Sent Events and
WebSockets alike, before any body is read:

- credentials: `Authorization: Bearer <key>` (an API key, DUCTWORK_ADMIN_API_KEY, or
  for `/metrics` DUCTWORK_METRICS_TOKEN), else the `dw_session` cookie;
- 401 without valid credentials (`WWW-Authenticate: Bearer`), 403 for a role that
  may not, 429 (`Retry-After`) once a client address has too many failed keys
  (the "login" rate limit);
- a request authenticated by cookie must send `X-CSRF-Token` equal to the
  `dw_csrf` cookie on unsafe methods; a WebSocket authenticated by cookie must come
  from the same host or an allowed CORS origin (a page on another site cannot
  open one with the user's cookie);
- WebSockets are accepted and then closed with code 4401 (not authenticated) or
  4403 (not allowed) and a reason: a browser cannot read why a handshake was
  refused (it only sees 1006), but it can read a close code (like 4404 for an
  unknown execution, `ductwork.api.live`);
- sets `request.state.principal` and `ductwork.security.context.current()`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from http.cookies import SimpleCookie
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from starlette._utils import get_route_path
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from ductwork.api.hosts import is_loopback
from ductwork.api.responses import dumps
from ductwork.security.authn import ANONYMOUS_ADMIN
from ductwork.security.context import RequestContext, set_current
from ductwork.security.keys import same
from ductwork.security.models import Permission, Principal, Role
from ductwork.security.sessions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    csrf_token_for,
)
from ductwork.service import Ductwork

log = logging.getLogger("ductwork.api")

PUBLIC: Final = "public"
"""Open without credentials."""
AUTHENTICATED: Final = "authenticated"
"""Any valid credentials, whatever the role (`/auth/me`, logout)."""

Rule = Permission | Literal["public", "authenticated"]

P = Permission
ROUTE_PERMISSIONS: Final[dict[tuple[str, str], Rule]] = {
    # System
    ("GET", "/health"): PUBLIC,
    ("GET", "/node-types"): P.READ,
    ("GET", "/metrics"): P.METRICS,  # or DUCTWORK_METRICS_TOKEN
    # OpenAPI documents (describe the API; hold no data)
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    # The web app's shell (static files, no data: every call it makes needs credentials)
    ("GET", "/"): PUBLIC,  # browsers are sent to /ui/, anything else gets 404
    ("GET", "/ui/"): PUBLIC,
    ("GET", "/ui/{path:path}"): PUBLIC,
    # Workflows
    ("POST", "/workflows/"): P.EDIT,
    ("GET", "/workflows/"): P.READ,
    ("POST", "/workflows/validate"): P.READ,
    ("GET", "/workflows/{workflow_id}"): P.READ,
    ("PUT", "/workflows/{workflow_id}"): P.EDIT,
    ("DELETE", "/workflows/{workflow_id}"): P.EDIT,
    ("POST", "/workflows/{workflow_id}/execute"): P.RUN,
    ("GET", "/workflows/{workflow_id}/executions"): P.READ,
    ("GET", "/workflows/{workflow_id}/schedule"): P.READ,
    ("POST", "/workflows/{workflow_id}/pause"): P.EDIT,
    ("POST", "/workflows/{workflow_id}/resume"): P.EDIT,
    ("GET", "/workflows/{workflow_id}/usage"): P.READ,
    ("GET", "/trigger-types"): P.READ,
    ("GET", "/workflows/{workflow_id}/versions"): P.READ,
    ("GET", "/workflows/{workflow_id}/versions/diff"): P.READ,
    ("GET", "/workflows/{workflow_id}/versions/{version}"): P.READ,
    ("POST", "/workflows/{workflow_id}/versions/{version}/restore"): P.EDIT,
    # Executions
    ("GET", "/workflows/executions"): P.READ,
    ("GET", "/workflows/executions/{execution_id}"): P.READ,
    ("DELETE", "/workflows/executions/{execution_id}"): P.EDIT,
    ("POST", "/workflows/executions/{execution_id}/cancel"): P.RUN,
    ("POST", "/workflows/executions/{execution_id}/retry"): P.RUN,
    ("GET", "/workflows/executions/{execution_id}/events"): P.READ,
    ("GET", "/workflows/executions/{execution_id}/events/page"): P.READ,
    ("POST", "/workflows/executions/{execution_id}/nodes/{node_id}/resume"): P.RUN,
    # Inbound webhooks and resume links: no API key; the trigger's own auth (token or
    # HMAC signature) or the link's signature is the gate (src/ductwork/api/hooks.py,
    # src/ductwork/api/resume.py).
    ("GET", "/hooks/{path:path}"): PUBLIC,
    ("POST", "/hooks/{path:path}"): PUBLIC,
    ("PUT", "/hooks/{path:path}"): PUBLIC,
    ("PATCH", "/hooks/{path:path}"): PUBLIC,
    ("DELETE", "/hooks/{path:path}"): PUBLIC,
    ("GET", "/resume/{token}"): PUBLIC,
    ("POST", "/resume/{token}"): PUBLIC,
    ("WEBSOCKET", "/ws/executions/{execution_id}"): P.READ,
    # Generation (writes a workflow when `save`; spends the LLM budget)
    ("POST", "/ai/workflows/generate"): P.EDIT,
    # Accounts
    ("GET", "/setup"): PUBLIC,
    ("POST", "/auth/setup"): PUBLIC,
    ("POST", "/auth/login"): PUBLIC,
    ("POST", "/auth/logout"): AUTHENTICATED,
    ("GET", "/auth/me"): AUTHENTICATED,
    ("GET", "/auth/keys"): P.KEYS_OWN,
    ("POST", "/auth/keys"): P.KEYS_OWN,
    ("DELETE", "/auth/keys/{key_id}"): P.KEYS_OWN,  # others' keys: KEYS_ALL (in Accounts)
    ("GET", "/auth/users"): P.USERS,
    ("POST", "/auth/users"): P.USERS,
    ("PATCH", "/auth/users/{user_id}"): P.USERS,
    ("DELETE", "/auth/users/{user_id}"): P.USERS,
    # Credentials (the credentials helper's routes)
    ("GET", "/credentials"): P.CREDENTIALS_READ,
    ("POST", "/credentials"): P.CREDENTIALS_WRITE,
    ("GET", "/credentials/{name}"): P.CREDENTIALS_READ,
    ("PUT", "/credentials/{name}"): P.CREDENTIALS_WRITE,
    ("DELETE", "/credentials/{name}"): P.CREDENTIALS_WRITE,
    ("GET", "/credential-types"): P.READ,
    # Audit log (the audit helper's route)
    ("GET", "/audit"): P.AUDIT,
}

WS_UNAUTHENTICATED: Final = 4401
WS_FORBIDDEN: Final = 4403
WS_RATE_LIMITED: Final = 4429
WS_NOT_FOUND: Final = 4404

UNAUTHENTICATED: Final = Principal(kind="anonymous", role=Role.VIEWER, name="unauthenticated")
"""The context of a request to a public route (no credentials were checked)."""


def is_public(method: str, template: str) -> bool:
    """Whether an operation (any case of method; a path template) is open without credentials.

    `template` as the router spells it (`/hooks/{path:path}`) or as the OpenAPI document
    does, without converters (`/hooks/{path}`).
    """
    method = method.upper()
    if rule_for(method, template) == PUBLIC:
        return True
    return any(
        rule == PUBLIC
        for (known_method, known), rule in ROUTE_PERMISSIONS.items()
        if known_method == method and ":" in known and _CONVERTER.sub(r"{\1}", known) == template
    )


_CONVERTER: Final = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*):[a-z]+}")


def rule_for(method: str, template: str) -> Rule | None:
    """What a route needs; None when it is not in the table (refused)."""
    rule = ROUTE_PERMISSIONS.get((method, template))
    if rule is None and method == "HEAD":
        rule = ROUTE_PERMISSIONS.get(("GET", template))
    return rule


def _headers(scope: Scope) -> dict[str, str]:
    # Last value wins except cookies, which are joined (browsers send one header anyway).
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name == "cookie" and name in headers:
            headers[name] += "; " + value
        else:
            headers[name] = value
    return headers


def _cookies(header: str | None) -> dict[str, str]:
    if not header:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:
        return {}
    return {name: morsel.value for name, morsel in jar.items()}


def app_routes(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    """Every (method, path template) of an app's routes (`WEBSOCKET` for WebSockets)."""
    try:  # FastAPI >= 0.120 keeps included routers unflattened; this walks them
        from fastapi.routing import iter_route_contexts

        contexts: list[Any] = list(iter_route_contexts(routes))
    except ImportError:
        contexts = list(routes)
    found: list[tuple[str, str]] = []
    for route in contexts:
        path = getattr(route, "path", None)
        if path is None:
            continue
        methods = getattr(route, "methods", None)
        for method in sorted(methods) if methods else ["WEBSOCKET"]:
            found.append((method, path))
    return found


_PARAM: Final = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(:path)?}")


class RouteMatcher:
    """Finds the template a path matches, the most literal template first.

    Independent of the router's internals; it agrees with the router because the
    app declares literal routes (`/workflows/executions/...`) before the
    parametrised ones that could capture them (`/workflows/{workflow_id}`).
    """

    def __init__(self, routes: list[tuple[str, str]]) -> None:
        templates: dict[str, set[str]] = {}
        for method, template in routes:
            templates.setdefault(template, set()).add(method)
        ordered = sorted(templates, key=_specificity)
        self._patterns = [(re.compile(_regex(t)), t, templates[t]) for t in ordered]

    def match(self, method: str, path: str) -> str | None:
        """The template of the route for `method` at `path`; None when there is none."""
        wanted = "GET" if method == "HEAD" else method
        for pattern, template, methods in self._patterns:
            if (wanted in methods or method in methods) and pattern.match(path):
                return template
        return None

    def near(self, path: str) -> list[tuple[str, str]]:
        """Every (method, template) whose template matches `path` or `path` with its
        trailing slash toggled, whatever the method: the routes a request the router
        answers 405 or redirects could be about."""
        toggled = path[:-1] if path.endswith("/") else path + "/"
        return [
            (method, template)
            for pattern, template, methods in self._patterns
            if pattern.match(path) or (toggled and pattern.match(toggled))
            for method in sorted(methods)
        ]


def _regex(template: str) -> str:
    parts: list[str] = []
    last = 0
    for found in _PARAM.finditer(template):
        parts.append(re.escape(template[last : found.start()]))
        parts.append(".+" if found.group(2) else "[^/]+")
        last = found.end()
    parts.append(re.escape(template[last:]))
    return "^" + "".join(parts) + "$"


def _specificity(template: str) -> tuple[int, ...]:
    return tuple(1 if "{" in segment else 0 for segment in template.split("/"))


class Refusal(Exception):
    """Why a request is refused: status (401/403/429), a sentence, extra headers."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


class AuthGuard:
    """ASGI middleware: authenticate, authorize, set the request's principal."""

    def __init__(self, app: ASGIApp, ductwork: Ductwork, routes: list[BaseRoute]) -> None:
        self.app = app
        self.ductwork = ductwork
        self.routes = routes
        self.settings = ductwork.settings
        # Built on the first request: every route is registered by then.
        self._matcher: RouteMatcher | None = None

    def _route_rule(self, scope: Scope, method: str) -> list[Rule | None] | None:
        """Every rule the request must pass (None in the list: refused, a route missing
        from the table); None when the path is no route's at all (answered 404 by the
        guard itself once the caller is authenticated).

        Paths are matched as the router matches them: without the ASGI root path
        (`uvicorn --root-path`, a Mount), so `/api/workflows/` is `/workflows/`.
        When no route takes this method at this path, the router answers 405 or
        redirects to the path with its trailing slash toggled: the request must then
        pass the rules of EVERY route at either path (the strictest), so a
        disagreement between this matcher and the router can never weaken a rule.
        """
        if self._matcher is None:
            self._matcher = RouteMatcher(app_routes(self.routes))
        path = get_route_path(scope)
        found = self._matcher.match(method, path)
        if found is not None:
            return [rule_for(method, found)]
        near = self._matcher.near(path)
        if not near:
            return None
        return [rule_for(m, t) for m, t in near]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = "WEBSOCKET" if kind == "websocket" else scope["method"]
        client = scope.get("client")
        address = client[0] if client else None
        try:
            principal = await self._check(scope, method, address)
        except Refusal as refusal:
            await self._refuse(scope, receive, send, refusal)
            return
        scope.setdefault("state", {})["principal"] = principal
        set_current(RequestContext(principal, address))
        await self.app(scope, receive, send)

    async def _check(self, scope: Scope, method: str, address: str | None) -> Principal:
        if self.settings.auth == "disabled":
            # DUCTWORK_AUTH=disabled is refused unless DUCTWORK_HOST is loopback, but a
            # server started otherwise (`uvicorn --factory --host 0.0.0.0`) never reads
            # DUCTWORK_HOST: the peer's own address decides too.
            if address is None or not is_loopback(address):
                raise Refusal(
                    403,
                    "DUCTWORK_AUTH=disabled serves only clients on this machine (loopback); "
                    "enable authentication to serve other addresses",
                )
            return ANONYMOUS_ADMIN
        rules = self._route_rule(scope, method)
        if rules is not None and all(rule == PUBLIC for rule in rules):
            return UNAUTHENTICATED
        headers = _headers(scope)
        authn = self.ductwork.authenticator
        principal: Principal | None = None
        session_token: str | None = None
        authorization = headers.get("authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise Refusal(401, "send `Authorization: Bearer <API key>`", _BEARER)
            if rules == [Permission.METRICS] and authn.is_metrics_token(token):
                return Principal(kind="anonymous", role=Role.VIEWER, name="metrics token")
            principal = await authn.from_bearer(token)
            if principal is None:
                await self._failed(address)
                raise Refusal(
                    401, "the API key is not valid (unknown, revoked or expired)", _BEARER
                )
        else:
            cookies = _cookies(headers.get("cookie"))
            session_token = cookies.get(SESSION_COOKIE)
            if session_token:
                principal = await authn.from_session(session_token)
                if principal is None:
                    raise Refusal(401, "the session has ended; sign in again", _BEARER)
                self._check_cross_site(scope, method, headers, cookies, session_token)
        if principal is None:
            raise Refusal(
                401,
                "authentication required: send `Authorization: Bearer <API key>` "
                "or sign in (POST /auth/login)",
                _BEARER,
            )
        if rules is None:
            # No route has this path: nothing of the app may run for it.
            raise Refusal(404, "Not Found")
        for rule in rules:
            if rule is None:
                raise Refusal(
                    403, "this route is not open to any role (not in the permission table)"
                )
            if rule not in (PUBLIC, AUTHENTICATED) and not principal.can(rule):  # type: ignore[arg-type]
                raise Refusal(403, f"a {principal.role} may not do this (needs {rule.value})")  # type: ignore[union-attr]
        return principal

    def _check_cross_site(
        self,
        scope: Scope,
        method: str,
        headers: Mapping[str, str],
        cookies: Mapping[str, str],
        session_token: str,
    ) -> None:
        if method == "WEBSOCKET":
            origin = headers.get("origin")
            if origin is not None and not self._same_site(origin, headers.get("host", "")):
                raise Refusal(403, f"a WebSocket from origin {origin!r} may not use the cookie")
            return
        if method in SAFE_METHODS:
            return
        sent = headers.get(CSRF_HEADER, "")
        expected = csrf_token_for(session_token)
        if not sent or not same(sent, cookies.get(CSRF_COOKIE, "")) or not same(sent, expected):
            raise Refusal(403, "CSRF check failed: send the dw_csrf cookie's value in X-CSRF-Token")

    def _same_site(self, origin: str, host: str) -> bool:
        if origin in self.settings.cors_origins:
            return True
        try:
            return urlsplit(origin).netloc.lower() == host.lower()
        except ValueError:
            return False

    async def _failed(self, address: str | None) -> None:
        limiter = getattr(self.ductwork, "limiter", None)
        if limiter is None or address is None:
            return
        retry = await limiter.hit("login", address)
        if retry is not None:
            raise Refusal(
                429,
                f"too many failed sign-ins or API keys from this address; retry in {retry:.0f} s",
                {"Retry-After": str(int(retry))},
            )

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, refusal: Refusal) -> None:
        if scope["type"] == "websocket":
            message = await receive()
            if message["type"] != "websocket.connect":
                return
            await send({"type": "websocket.accept"})
            code = {401: WS_UNAUTHENTICATED, 404: WS_NOT_FOUND, 429: WS_RATE_LIMITED}.get(
                refusal.status, WS_FORBIDDEN
            )
            await send({"type": "websocket.close", "code": code, "reason": refusal.detail[:120]})
            return
        body = dumps({"detail": refusal.detail})
        raw_headers: list[tuple[bytes, bytes]] = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ]
        raw_headers += [(k.lower().encode(), v.encode()) for k, v in refusal.headers.items()]
        await send(
            {"type": "http.response.start", "status": refusal.status, "headers": raw_headers}
        )
        await send({"type": "http.response.body", "body": body})


_BEARER: Final = {"WWW-Authenticate": "Bearer"}


def principal_of(state: Any) -> Principal:
    """The principal the guard set on a request's state."""
    principal: Principal = state.principal
    return principal
