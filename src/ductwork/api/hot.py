"""The busiest routes, served without FastAPI's per-request machinery.

FastAPI resolves every route's parameters through its dependency solver and
matches the path twice through nested routers: about 0.3 ms of CPU per call
on `POST /workflows/{id}/execute` before the endpoint runs, a large share of
a 3-node run. `HotRoutes` sits where the router is called (inside the
exception middleware, after the host check, authentication and the body-size
limit) and serves three routes by calling the very same endpoint functions:

- `POST /workflows/{workflow_id}/execute`
- `GET /workflows/{workflow_id}`
- `GET /workflows/executions/{execution_id}`

It only takes the ordinary case: a valid id, a JSON body that validates as
`ExecuteRequest`, an `Idempotency-Key` within its length. Anything else (a
bad id, a body FastAPI would answer 422, HEAD, a trailing slash) goes to the
router as if this layer were not there, with the body it already read
replayed, so every error keeps the shape FastAPI gives it. What the route
itself checks is the same functions either way: the Content-Type check
(`check_content_type`, 415), body parsing (`parse_json_body`, 422), the
execute rate limit (`ExecuteRateLimit`'s `limit_execute`, 429), and the
service's errors answered by the app's exception handlers. The OpenAPI
document still comes from the FastAPI routes, which stay registered.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic import ValidationError
from starlette._utils import get_route_path
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ductwork.api import workflows
from ductwork.api.limits import (
    MAX_ID_LENGTH,
    RESOURCE_ID_PATTERN,
    check_content_type,
    limit_execute,
    parse_json_body,
)
from ductwork.service import Ductwork

_EXECUTE: Final = re.compile(r"/workflows/([^/]+)/execute")
_EXECUTION: Final = re.compile(r"/workflows/executions/([^/]+)")
_WORKFLOW: Final = re.compile(r"/workflows/([^/]+)")
_ID: Final = re.compile(RESOURCE_ID_PATTERN)
_NOT_WORKFLOW_IDS: Final = frozenset({"executions", "validate"})
"""Literal routes declared before `/workflows/{workflow_id}`: left to the router."""
MAX_IDEMPOTENCY_KEY_LENGTH: Final = 200
"""`execute_workflow`'s `Idempotency-Key` bound (a longer one is the router's 422)."""


def _valid_id(value: str) -> bool:
    # fullmatch: `$` would also match before a final newline (pydantic's pattern does not).
    return len(value) <= MAX_ID_LENGTH and _ID.fullmatch(value) is not None


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that gives `body` again, then whatever the connection says next."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class HotRoutes:
    """ASGI wrapper of the router: the ordinary calls of the busiest routes, directly."""

    def __init__(self, router: ASGIApp, application: Ductwork) -> None:
        self.router = router
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A query string (e.g. `?events=false` on a run) is the router's to parse.
        if scope["type"] == "http" and not scope.get("query_string"):
            method = scope["method"]
            if method == "POST":
                path = get_route_path(scope)
                found = _EXECUTE.fullmatch(path)
                if found is not None and _valid_id(found.group(1)):
                    await self._execute(found.group(1), scope, receive, send)
                    return
            elif method == "GET":
                path = get_route_path(scope)
                found = _EXECUTION.fullmatch(path)
                if found is not None:
                    if _valid_id(found.group(1)):
                        response = await workflows.get_execution(self.application, found.group(1))
                        await response(scope, receive, send)
                        return
                else:
                    found = _WORKFLOW.fullmatch(path)
                    if (
                        found is not None
                        and found.group(1) not in _NOT_WORKFLOW_IDS
                        and _valid_id(found.group(1))
                    ):
                        response = await workflows.get_workflow(self.application, found.group(1))
                        await response(scope, receive, send)
                        return
        await self.router(scope, receive, send)

    async def _execute(self, workflow_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        check_content_type(request)  # CheckedJSONRoute's first check: 415 before the body
        key = request.headers.get("idempotency-key")
        raw = await request.body()
        if not raw or (key is not None and len(key) > MAX_IDEMPOTENCY_KEY_LENGTH):
            await self.router(scope, _replaying(raw, receive), send)
            return
        # RequestRejected (422) as CheckedJSONRequest raises it, before any dependency.
        parsed = parse_json_body(raw, self.application.settings.max_json_depth)
        try:
            body = workflows.ExecuteRequest.model_validate(parsed)
        except ValidationError:
            # The router answers it: the same 422 as any other validation error.
            await self.router(scope, _replaying(raw, receive), send)
            return
        await limit_execute(request)
        response = await workflows.execute_workflow(self.application, workflow_id, body, key)
        await response(scope, receive, send)
