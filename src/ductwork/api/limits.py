"""Bounds on what a request may carry, checked before any route sees it.

Every JSON body is parsed here, once, by orjson rather than the stdlib parser
FastAPI would use: orjson refuses `NaN`/`Infinity` (which Python's `json`
accepts and the stores would keep as null or refuse) and lone surrogates
(which no encoder can write back, so a run holding one answered 500 on every
read). Then one walk over the parsed value refuses what the stores or the
response encoder cannot hold, naming the field:

- nesting deeper than `DUCTWORK_MAX_JSON_DEPTH` (orjson refuses to encode past
  254 levels, so a deep `metadata` or `inputs` would be saved and then fail
  every read);
- NUL characters (`\\u0000`), which PostgreSQL's JSONB and text columns refuse;
- integers outside the signed 64-bit range, which SQLite and MongoDB refuse (orjson
  would read the largest ones as rounded floats).

Problems are raised as `RequestRejected` and answered 422 by
`ductwork.api.errors` in the same shape as a request validation error.

Bodies must say they are JSON: a POST, PUT, PATCH or DELETE carrying another
`Content-Type` (an HTML form's `application/x-www-form-urlencoded` or
`multipart/form-data`, `text/plain`), or a body with none, is answered 415
before the route runs. Browsers send those three types cross-site without
asking the server first (no CORS preflight), so accepting them let any web
page start runs; a body-less call without a `Content-Type` (`curl -X POST
.../execute`) is still accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, Path, Query, Request
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ductwork.jsonvalues import (
    JSONProblem,
    Segment,
    dotted,
    encodable,
    loads_checked,
)

MAX_OFFSET: Final = 2**31 - 1
"""The largest `offset` a listing accepts: every store can skip this many rows."""

MAX_ID_LENGTH: Final = 200
MAX_NAME_SEARCH_LENGTH: Final = 200
"""The longest name search (`q`) the workflows list accepts (names hold up to 500)."""

Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
MAX_SEQ: Final = 2**31 - 1
"""The largest event seq a client may name: `run_events.seq` is a 32-bit integer column
(PostgreSQL refuses a larger parameter outright)."""
Seq = Annotated[int, Query(ge=0, le=MAX_SEQ, description="Last seq the client has seen.")]
RESOURCE_ID_PATTERN: Final = r"^[^\x00-\x1f\x7f]+$"
"""What an id in a path may hold: no control characters (PostgreSQL refuses NUL in a
text parameter)."""
ResourceId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=RESOURCE_ID_PATTERN,
        description="A workflow or execution id.",
    ),
]


class RequestRejected(HTTPException):
    """A request body or field ductwork refuses, with where and why (answered 422).

    An HTTPException so that FastAPI's body parsing lets it through unchanged
    (anything else raised while parsing becomes a bare 400).
    """

    def __init__(self, message: str, field: str | None = None, node_id: str | None = None):
        self.message = message
        self.field = field
        self.node_id = node_id
        super().__init__(422, f"{field}: {message}" if field else message)

    def issue(self) -> dict[str, Any]:
        """The `{node_id, field, message}` entry of the 422 answer."""
        return {"node_id": self.node_id, "field": self.field, "message": self.message}


def _node_id_of(body: Any, path: tuple[Segment, ...]) -> str | None:
    """The id of the node a body path points into, when it is a plain id."""
    if len(path) < 2 or path[0] != "nodes" or not isinstance(path[1], int):
        return None
    nodes = body.get("nodes") if isinstance(body, dict) else None
    if not isinstance(nodes, list) or path[1] >= len(nodes) or not isinstance(nodes[path[1]], dict):
        return None
    node_id = nodes[path[1]].get("id")
    if not isinstance(node_id, str) or not node_id or len(node_id) > MAX_ID_LENGTH:
        return None
    # Only echo an id the response can carry and a reader can trust.
    return node_id if node_id.isprintable() and encodable(node_id) else None


def parse_json_body(raw: bytes, max_depth: int) -> Any:
    """Parse a request body and check it can be stored and served; raises RequestRejected."""
    try:
        return loads_checked(raw, max_depth)
    except JSONProblem as problem:
        if problem.path is None:
            raise RequestRejected(problem.message) from None
        raise RequestRejected(
            problem.message, dotted(problem.path), _node_id_of(problem.document, problem.path)
        ) from None


def check_size(value: Any, field: str, limit: int, setting: str) -> None:
    """Refuse `value` when its JSON encoding is larger than `limit` bytes."""
    size = len(orjson.dumps(value))
    if size > limit:
        raise RequestRejected(
            f"is {size:,} bytes of JSON; the limit is {limit:,} (the setting {setting})", field
        )


class UnsupportedMediaType(HTTPException):
    """A body sent as anything but JSON to a JSON route (answered 415).

    Browsers send forms (`application/x-www-form-urlencoded`, `multipart/form-data`,
    `text/plain`) cross-site without a CORS preflight; refusing them, even empty, keeps
    a page on another site from starting runs with a form post.
    """

    def __init__(self, content_type: str | None):
        got = f"got {content_type[:100]!r}" if content_type else "none was sent"
        super().__init__(415, f"Content-Type must be application/json; {got}")


def is_json_media_type(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, parameters ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class CheckedJSONRequest(Request):
    """A request whose JSON body is parsed by `parse_json_body`, not the stdlib parser."""

    async def json(self) -> Any:
        if not hasattr(self, "_checked_json"):
            max_depth: int = self.app.state.ductwork.settings.max_json_depth
            self._checked_json = parse_json_body(await self.body(), max_depth)
        return self._checked_json


UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _declares_body(request: Request) -> bool:
    """Whether the request says a body follows (a non-zero length, or chunked)."""
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "transfer-encoding" in request.headers


def check_content_type(request: Request) -> None:
    """Refuse (415) a request that may change something and does not carry JSON.

    Only the headers are read: a body announced without a type, or any type but JSON,
    is refused before the body is (routes without a body included: a cross-site form
    post to `/cancel` is refused too).
    """
    if request.method not in UNSAFE_METHODS:
        return
    content_type = request.headers.get("content-type")
    if content_type is None:
        if _declares_body(request):
            raise UnsupportedMediaType(None)
        return
    if not is_json_media_type(content_type):
        raise UnsupportedMediaType(content_type)


class CheckedJSONRoute(APIRoute):
    """A route that reads its JSON body through `CheckedJSONRequest` (FastAPI's documented
    way to change how a route parses requests: a custom request class) and takes JSON
    bodies only (`check_content_type`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def checked(request: Request) -> Response:
            check_content_type(request)
            return await handle(CheckedJSONRequest(request.scope, request.receive))

        return checked


def rate_limit_key(request: Request) -> str:
    """Who a rate limit counts: the authenticated principal (`Principal.actor`), or the
    client address for anonymous calls (no principal, or auth disabled)."""
    principal = getattr(request.state, "principal", None)
    actor = getattr(principal, "actor", None)
    if isinstance(actor, str) and actor != "anonymous":
        return actor
    return f"client:{request.client.host}" if request.client else "client:unknown"


async def limit_execute(request: Request) -> None:
    """Count the call against the "execute" rule; 429 with Retry-After past it."""
    limiter = request.app.state.ductwork.limiter
    retry_after = await limiter.hit("execute", rate_limit_key(request))
    if retry_after is not None:
        seconds = int(retry_after)
        raise HTTPException(
            429,
            f"too many execute, retry and generate calls: the limit is "
            f"{limiter.rate('execute')} (DUCTWORK_EXECUTE_RATE_LIMIT); try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


ExecuteRateLimit: Final = Depends(limit_execute)
"""Route dependency: counts the call against the "execute" rule; 429 with Retry-After past it."""
