"""`/hooks/{path}`: inbound webhooks start runs (`ductwork.triggers.hooks` decides).

No API key: the trigger's own auth (a token or an HMAC signature) is the gate, so
`ROUTE_PERMISSIONS` lists these routes as public. The body is read here with the
hook's own cap (the app-wide `BodySizeLimit` stays around it), in any media type:
webhook senders post JSON, forms and text.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field, RootModel

from ductwork.api.bodysize import read_capped
from ductwork.api.deps import App
from ductwork.api.responses import JSON
from ductwork.api.schemas import ErrorDetail
from ductwork.triggers.hooks import (
    EXECUTION_HEADER,
    SAFE_HEADERS,
    BodyTooLarge,
    HookAnswer,
    HookCall,
    HookRefused,
)

METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
_SAFE_NAMES: Final = frozenset(name.lower() for name in SAFE_HEADERS)


class HookResult(RootModel[Any]):
    """`respond: sync`, run succeeded: the run's result (its end node's output), as JSON
    unless the end node set another Content-Type for a text result."""


class HookAccepted(BaseModel):
    """The run started (`respond: async`) or outlived the sync wait: poll its Location."""

    execution_id: str
    status: str = Field(description="queued, running or waiting")


class HookRunFailed(BaseModel):
    """`respond: sync`: the run failed (or was cancelled). `error` is its summary."""

    execution_id: str
    status: str = Field(description="error or cancelled")
    error: str


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "model": HookResult,
        "description": "respond sync: the run succeeded; the end node may set the status "
        "code and headers",
    },
    202: {
        "model": HookAccepted,
        "description": "respond async, or a sync run still going after its wait",
        "headers": {"Location": {"description": "The execution to poll (needs an API key)"}},
    },
    400: _error("The body does not parse as its Content-Type says, or cannot be stored"),
    401: _error("The request fails the trigger's auth (token or signature); nothing ran"),
    404: _error("No workflow serves this path"),
    405: _error("The trigger does not take this method (see the Allow header)"),
    409: _error("The workflow is paused"),
    413: _error("The body is larger than the hook's limit"),
    415: _error("The body is not text in its charset"),
    429: {
        **_error("Too many calls to this path"),
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before trying again",
                "schema": {"type": "integer"},
            }
        },
    },
    500: {"model": HookRunFailed, "description": "respond sync: the run failed"},
    503: _error("The hook's credential is missing: its owner has to fix it"),
}


def _reader(request: Request) -> Callable[[int], Awaitable[bytes]]:
    async def read_body(limit: int) -> bytes:
        return await read_capped(request, limit, BodyTooLarge)

    return read_body


def _protected(headers: Mapping[str, str]) -> dict[str, str]:
    """`headers` with SAFE_HEADERS last, replacing any of the same name in any case
    (an end node saved before they were refused must not loosen them)."""
    kept = {k: v for k, v in headers.items() if k.lower() not in _SAFE_NAMES}
    return {**kept, **SAFE_HEADERS}


def response_for(answer: HookAnswer, root_path: str) -> Response:
    headers = _protected(answer.headers)
    if answer.poll is not None:
        headers["Location"] = f"{root_path}/workflows/executions/{answer.poll}"
    if answer.media_type is None:
        return JSON(status_code=answer.status, content=answer.body, headers=headers)
    return Response(
        content=answer.body,
        status_code=answer.status,
        headers=headers,
        media_type=answer.media_type or None,  # "": no Content-Type (a 204)
    )


async def call_hook(app: App, request: Request, path: str) -> Response:
    call = HookCall(
        path=path,
        method=request.method,
        headers=request.headers,
        query=request.query_params.multi_items(),
        read_body=_reader(request),
    )
    try:
        answer = await app.call_hook(call)
    except HookRefused as refused:
        return JSON(
            status_code=refused.status,
            content={"detail": refused.detail},
            headers=_protected(refused.headers),
        )
    return response_for(answer, request.scope.get("root_path", ""))


router = APIRouter(tags=["hooks"])

for _method in METHODS:
    # One route per method: one operation id each in the OpenAPI document.
    router.add_api_route(
        "/hooks/{path:path}",
        call_hook,
        methods=[_method],
        name=f"call_hook_{_method.lower()}",
        summary=f"Call a webhook ({_method})",
        description="Starts a run of the workflow whose webhook trigger serves `path`, if "
        "the trigger takes this method and the request passes its auth (no API key). The "
        "run's inputs: the trigger's `inputs`, then `body` (JSON, a form as an object, or "
        "text), `query`, `headers` (the trigger's chosen ones, lower-cased), `method` and "
        "`path`. An `Idempotency-Key` header starts at most one run per key. Every answer "
        f"that started or found a run names it in `{EXECUTION_HEADER}`.",
        response_model=HookResult,
        responses=_RESPONSES,
    )
