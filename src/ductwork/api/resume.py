"""Resuming a parked `wait` node: its signed link (no API key) and the API route (RUN).

- `GET /resume/{token}`: a minimal, self-contained approval page (title, message,
  Approve / Reject); nothing is changed by opening it, so mail scanners that
  follow links answer nothing.
- `POST /resume/{token}`: a JSON object (the node's output) or the page's form
  (`{"approved": true|false}`). No API key: the link's signature is the gate
  (`ductwork.triggers.resume`); a forged token is refused (403) before the store
  is asked anything.
- `POST /workflows/executions/{execution_id}/nodes/{node_id}/resume`: the same
  for API clients, with a key (permission RUN), audited as `run.resume`.

Answers: 202 resumed; 403 forged link; 404 no such run or node; 409 the node has
not started waiting yet (Retry-After) or is not a wait node; 410 answered already,
timed out, or the run ended. The posted body is capped at DUCTWORK_MAX_INPUTS_BYTES.
"""

from __future__ import annotations

import base64
import hashlib
import html
from typing import Annotated, Any, Final
from urllib.parse import parse_qs

from fastapi import APIRouter, Body, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from ductwork.api.bodysize import read_capped
from ductwork.api.deps import App
from ductwork.api.limits import (
    MAX_ID_LENGTH,
    CheckedJSONRoute,
    RequestRejected,
    ResourceId,
    UnsupportedMediaType,
    check_size,
    is_json_media_type,
    parse_json_body,
)
from ductwork.api.responses import JSON
from ductwork.api.schemas import ErrorDetail, error_responses
from ductwork.service import Ductwork
from ductwork.triggers.resume import ForgedLink

router = APIRouter(tags=["resume"])
api_router = APIRouter(prefix="/workflows", tags=["workflows"], route_class=CheckedJSONRoute)

FORM: Final = "application/x-www-form-urlencoded"
SETTING: Final = "DUCTWORK_MAX_INPUTS_BYTES"


class ResumeAnswer(BaseModel):
    """A resume that was handed over: the run goes on."""

    execution_id: str
    node_id: str
    status: str = "resumed"


_REFUSALS: Final[dict[str, tuple[int, str, str]]] = {
    # outcome: (status, page heading, sentence)
    "forged": (403, "Invalid link", "This link is not valid: it was not made by this server."),
    "not_found": (404, "Not found", "There is no such run or step (it may have been deleted)."),
    "not_yet": (
        409,
        "Not ready yet",
        "The run has not reached this step yet. Try again in a moment.",
    ),
    "not_resumable": (409, "Cannot resume", "This step does not wait to be resumed."),
    "used": (410, "Already answered", "This request was answered already; nothing more to do."),
    "ended": (
        410,
        "No longer waiting",
        "This request is closed: it timed out, or its run ended.",
    ),
}

_DOCUMENTED_REFUSALS: Final[dict[int | str, dict[str, Any]]] = {
    409: {
        "model": ErrorDetail,
        "description": "The node has not started waiting yet (see Retry-After), or it is "
        "not a wait node",
    },
    410: {
        "model": ErrorDetail,
        "description": "Answered already, timed out, or the run ended: the link is spent",
    },
}

_PAGE: Final = {"text/html": {"schema": {"type": "string"}}}
"""What the link routes send a browser: a page."""

_PAGE_REFUSALS: Final = {
    403: "The link is not valid (not made by this server, or altered)",
    404: "No such run or node",
    409: "The run has not reached the node yet (see Retry-After), or it is not a wait node",
    410: "Answered already, timed out, or the run ended: the link is spent",
}


def _with_pages(responses: dict[int | str, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    """`responses`, each also as a page: what a post of the approval page's form gets."""
    return {
        status: {
            **entry,
            "content": _PAGE,
            "description": _PAGE_REFUSALS.get(int(status), entry["description"]),
        }
        for status, entry in responses.items()
    }


_STYLE: Final = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;"
    "color:#1a1a1a;background:#fff}"
    "@media (prefers-color-scheme:dark){body{color:#e8e8e8;background:#161616}}"
    ".from{color:#777;margin-top:-.5rem}"
    ".message{white-space:pre-wrap;overflow-wrap:anywhere;border-left:3px solid #8884;"
    "padding:.2rem 0 .2rem 1rem;margin:1.5rem 0}"
    "button{font:inherit;padding:.5rem 1.4rem;margin-right:.6rem;border-radius:.3rem;"
    "border:1px solid #8888;cursor:pointer}"
    ".approve{background:#1f7a3d;color:#fff;border-color:#1f7a3d}"
)
_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

PAGE_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # No scripts, no external anything; the one stylesheet is allowed by its hash, and
    # the form may post only back to this server.
    "Content-Security-Policy": (
        f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
}
"""Sent with every answer of the link routes: the token must stay out of caches and
Referer headers, and the page out of frames."""


def _page(status: int, heading: str, body: str, *, title: str | None = None) -> HTMLResponse:
    """A self-contained page; `heading` and `title` are escaped here, `body` is markup."""
    document = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{html.escape(title or heading)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(heading)}</h1>{body}</main></body></html>\n"
    )
    return HTMLResponse(document, status_code=status, headers=PAGE_HEADERS)


def _refusal_page(outcome: str) -> HTMLResponse:
    status, heading, sentence = _REFUSALS[outcome]
    response = _page(status, heading, f"<p>{html.escape(sentence)}</p>")
    if outcome == "not_yet":
        response.headers["Retry-After"] = "1"
    return response


def _refusal(outcome: str, node_id: str) -> HTTPException:
    """The JSON refusal for an outcome (the node named where it helps)."""
    status, _, sentence = _REFUSALS[outcome]
    details = {
        "not_found": f"no such run, or it has no node {node_id!r}",
        "not_yet": f"node {node_id!r} has not started waiting yet; try again shortly",
        "not_resumable": f"node {node_id!r} is not a wait node: only wait nodes are resumed",
        "used": f"node {node_id!r} was resumed already (resume links are single-use)",
        "ended": f"node {node_id!r} is no longer waiting: it timed out, or the run ended",
    }
    headers = {"Cache-Control": "no-store"}
    if outcome == "not_yet":
        headers["Retry-After"] = "1"
    return HTTPException(status, details.get(outcome, sentence), headers=headers)


def _verify(app: Ductwork, token: str) -> tuple[str, str] | None:
    links = app.resume_links
    if links is None:
        return None
    try:
        return links.verify(token)
    except ForgedLink:
        return None


Token = Annotated[str, Path(description="The token of a resume link.")]


@router.get(
    "/resume/{token}",
    summary="The approval page of a resume link (changes nothing)",
    response_class=HTMLResponse,
    responses={
        200: {"content": _PAGE, "description": "The approval page."},
        **{
            status: {"content": _PAGE, "description": description}
            for status, description in _PAGE_REFUSALS.items()
        },
    },
)
async def resume_page(app: App, token: Token) -> HTMLResponse:
    target = _verify(app, token)
    if target is None:
        return _refusal_page("forged")
    prompt = await app.resumes.prompt(*target)
    if prompt.state != "open":
        return _refusal_page(prompt.state)
    message = f'<div class="message">{html.escape(prompt.message)}</div>' if prompt.message else ""
    body = (
        f'<p class="from">{html.escape(prompt.workflow_name)}</p>{message}'
        '<form method="post">'
        '<button class="approve" type="submit" name="decision" value="approve">Approve</button>'
        '<button type="submit" name="decision" value="reject">Reject</button>'
        "</form>"
    )
    return _page(200, prompt.title or "Approval needed", body)


async def _read_body(app: App, request: Request) -> bytes:
    """The body, refused (413) as soon as it passes DUCTWORK_MAX_INPUTS_BYTES."""
    limit = app.settings.max_inputs_bytes
    return await read_capped(request, limit, lambda: _too_large(limit))


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"the body is larger than {limit:,} bytes (the limit set by {SETTING})",
        headers={"Connection": "close"},
    )


_LINK_BODY: Final = {
    "required": False,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "additionalProperties": True,
                "description": "Becomes the wait node's output.",
            },
            "example": {"approved": True, "comment": "Looks good"},
        },
        FORM: {
            "schema": {
                "type": "object",
                "properties": {"decision": {"type": "string", "enum": ["approve", "reject"]}},
                "required": ["decision"],
            },
            "description": "The approval page's form: the output is {approved: true|false}.",
        },
    },
}


@router.post(
    "/resume/{token}",
    summary="Resume a waiting node by its link (no API key: the link is signed)",
    status_code=202,
    response_model=ResumeAnswer,
    responses={
        200: {"content": _PAGE, "description": "The page's form was answered: a thank-you page."},
        **_with_pages({**error_responses(403, 404, 422), **_DOCUMENTED_REFUSALS}),
    },
    openapi_extra={"requestBody": _LINK_BODY},
)
async def resume_by_link(app: App, request: Request, token: Token) -> Response:
    content_type = request.headers.get("content-type")
    from_page = content_type is not None and content_type.split(";")[0].strip().lower() == FORM
    # The body is checked first, like every body (it is bounded; the store is not asked).
    if from_page:
        payload: Any = _decision(await _read_body(app, request))
    else:
        payload = await _json_object(app, request, content_type)
    target = _verify(app, token)
    if target is None:
        if from_page:
            return _refusal_page("forged")
        raise HTTPException(403, _REFUSALS["forged"][2], headers={"Cache-Control": "no-store"})
    execution_id, node_id = target
    if payload is None:
        return _page(422, "Choose an answer", "<p>Use the Approve or Reject button.</p>")
    outcome = await app.resumes.resume(execution_id, node_id, payload, via="link")
    if from_page:
        if outcome != "resumed":
            return _refusal_page(outcome)
        said = "approved" if payload["approved"] else "rejected"
        return _page(200, "Thank you", f"<p>Your answer ({said}) was recorded.</p>")
    if outcome != "resumed":
        raise _refusal(outcome, node_id)
    return JSON(
        status_code=202,
        content=ResumeAnswer(execution_id=execution_id, node_id=node_id).model_dump(),
        headers={"Cache-Control": "no-store"},
    )


def _decision(raw: bytes) -> dict[str, bool] | None:
    """The page's form as an output: {approved: true|false}; None for anything else."""
    try:
        fields = parse_qs(raw.decode("ascii"), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    decision = fields.get("decision", [])
    if decision == ["approve"]:
        return {"approved": True}
    if decision == ["reject"]:
        return {"approved": False}
    return None


async def _json_object(app: Ductwork, request: Request, content_type: str | None) -> Any:
    """A JSON object body (an empty body is `{}`); 413, 415 or 422 otherwise."""
    if content_type is not None and not is_json_media_type(content_type):
        raise UnsupportedMediaType(content_type)
    raw = await _read_body(app, request)
    if not raw.strip():
        return {}
    if content_type is None:
        raise UnsupportedMediaType(None)
    value = parse_json_body(raw, app.settings.max_json_depth)
    if not isinstance(value, dict):
        raise RequestRejected(
            f"must be a JSON object (it becomes the node's output), not {_kind(value)}", "body"
        )
    return value


def _kind(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


NodeId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="The id of the wait node.",
    ),
]


@api_router.post(
    "/executions/{execution_id}/nodes/{node_id}/resume",
    summary="Resume a waiting node (the API twin of its resume link)",
    description="The body, a JSON object, becomes the node's output (none: `{}`). 409 "
    "while the node has not started waiting (Retry-After) or when it is not a wait node; "
    "410 once it was resumed, timed out, or its run ended.",
    status_code=202,
    response_model=ResumeAnswer,
    responses={**error_responses(404, 422), **_DOCUMENTED_REFUSALS},
)
async def resume_by_api(
    app: App,
    execution_id: ResourceId,
    node_id: NodeId,
    payload: Annotated[
        dict[str, Any] | None,
        Body(openapi_examples={"approve": {"value": {"approved": True}}}),
    ] = None,
) -> JSON:
    body = payload if payload is not None else {}
    check_size(body, "body", app.settings.max_inputs_bytes, SETTING)
    outcome = await app.resumes.resume(execution_id, node_id, body, via="api")
    if outcome != "resumed":
        raise _refusal(outcome, node_id)
    return JSON(
        status_code=202,
        content=ResumeAnswer(execution_id=execution_id, node_id=node_id).model_dump(),
    )


def install(app: FastAPI) -> None:
    """Serve the resume routes: the link's page and post, and the API route."""
    app.include_router(router)
    app.include_router(api_router)
