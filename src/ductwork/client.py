"""A typed Python client for the ductwork HTTP API: `AsyncClient` and `Client` over httpx.

    async with AsyncClient() as dw:           # DUCTWORK_URL, DUCTWORK_API_KEY
        workflow = await dw.create_workflow({...})
        run = await dw.execute(workflow["id"], {"user_name": "Ada"}, wait=False)
        async for event in dw.events(run["execution_id"]):
            print(event.type, event.node_id)

Both clients have the same methods (the sync one without `await`). Responses are
plain dicts typed with `TypedDict`s; live events are small dataclasses (`Snapshot`,
`Event`). A refused request raises an `ApiError` subclass chosen by status.

This module needs httpx and httpx-sse only: it imports nothing else of ductwork, so
it can be vendored or used from a machine that only talks to a server.

The API key is held by an `httpx.Auth` object and added to each request as
`Authorization: Bearer ...`; it is never part of a repr, an exception or a log line
(httpx also masks the header in its own reprs), and it is not re-sent on redirects,
which are not followed.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Generic, Literal, NotRequired, TypedDict, TypeVar, cast
from urllib.parse import quote

import httpx
from httpx_sse import ServerSentEvent, aconnect_sse, connect_sse

__all__ = [
    "DEFAULT_TIMEOUT",
    "DEFAULT_URL",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "Conflict",
    "CredentialInfo",
    "Event",
    "EventPage",
    "ExecuteResult",
    "Execution",
    "Health",
    "InvalidRequest",
    "KeyCreated",
    "KeyInfo",
    "LastRun",
    "Me",
    "NodeState",
    "NodeType",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ProblemDetail",
    "RateLimited",
    "Role",
    "RunEvent",
    "Snapshot",
    "User",
    "ValidationReport",
    "Workflow",
    "WorkflowVersion",
]

DEFAULT_URL = "http://127.0.0.1:8000"
"""Where the client connects when neither `base_url` nor DUCTWORK_URL says otherwise."""

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
"""Longer than the server's default sync-execute wait (DUCTWORK_SYNC_WAIT_SECONDS, 30 s)."""

_STREAM_READ_SECONDS = 45.0
"""Shortest read timeout on an event stream: three of the server's 15 s keep-alives."""

_RETRYABLE_STREAM_STATUSES = frozenset({502, 503, 504})
"""Statuses a proxy or a restarting server answers; an event stream reconnects after them."""

Role = Literal["admin", "editor", "operator", "viewer"]


# Response shapes ------------------------------------------------------------------------
class ProblemDetail(TypedDict):
    """One reason a request was refused (422): the node and field it concerns, and why."""

    node_id: str | None
    field: str | None
    message: str


class Health(TypedDict):
    """`GET /health`: `status` is "ok", or "unavailable" when the store is unreachable."""

    status: str
    version: NotRequired[str]
    store: str
    active_runs: NotRequired[int]


class LastRun(TypedDict):
    """A workflow's newest run, as `list_workflows` shows it."""

    execution_id: str
    status: str
    created_at: str
    start_time: str | None
    end_time: str | None


class Workflow(TypedDict):
    """A stored workflow: its definition (the seed's fields) plus identity and version."""

    id: str
    _id: str
    version: int
    name: str
    nodes: list[dict[str, Any]]
    edges: list[dict[str, Any]]
    variables: list[Any] | dict[str, Any]
    status: str
    metadata: dict[str, Any]
    created_at: str
    updated_at: str
    last_run: NotRequired[LastRun | None]
    """In `list_workflows`: the workflow's newest run, None when it never ran."""


class WorkflowVersion(TypedDict):
    """One saved version of a workflow, as `list_versions` shows it (no definition)."""

    version: int
    created_at: str
    name: str
    node_count: int
    edge_count: int


class ValidationReport(TypedDict):
    """`POST /workflows/validate`: every problem found; `valid` when there is none."""

    valid: bool
    issues: list[ProblemDetail]


class NodeState(TypedDict):
    """One entry of a run's `node_states` (node types may add keys, e.g. `model`, `usage`)."""

    status: str
    output: Any
    cached: bool
    latency_ms: float | None
    error: str | None
    attempts: int
    started_at: str | None
    finished_at: str | None
    branch: NotRequired[str]
    wake_at: NotRequired[str]
    model: NotRequired[str]
    usage: NotRequired[dict[str, Any]]


class Execution(TypedDict):
    """A run, as `GET /workflows/executions/{id}` shows it."""

    execution_id: str
    workflow_id: str
    workflow_version: int
    status: str
    start_time: str | None
    end_time: str | None
    created_at: str
    variables: dict[str, Any]
    node_states: dict[str, NodeState]
    result: Any
    error: str | None
    logs: list[dict[str, Any]]
    errors: list[dict[str, Any]]
    wake_at: NotRequired[str]
    redrives: NotRequired[int]
    dead_letter: NotRequired[bool]
    worker: NotRequired[str]
    definition: NotRequired[dict[str, Any]]
    trigger: dict[str, Any] | None
    """What started the run, e.g. {"type": "manual"}; None for runs from before triggers."""
    workflow_name: NotRequired[str]
    """In `list_executions` across workflows: the name of the definition the run ran."""


class RunEvent(TypedDict):
    """One stored event of a run (`event_page`), as the live streams send it."""

    seq: int
    type: str
    node_id: str | None
    timestamp: str
    data: dict[str, Any]


class EventPage(TypedDict):
    """A page of a run's events: `next_after` is the next page's `after` (None: no more
    were stored when it was read)."""

    events: list[RunEvent]
    next_after: int | None


class ExecuteResult(TypedDict):
    """`POST /workflows/{id}/execute`; the outcome keys are there once the run has ended."""

    execution_id: str
    workflow_id: str
    status: str
    message: str
    started_at: str
    end_time: NotRequired[str | None]
    result: NotRequired[Any]
    error: NotRequired[str | None]
    node_states: NotRequired[dict[str, NodeState]]


class NodeType(TypedDict):
    """`GET /node-types`: a node type and the JSON Schema of its config."""

    type: str
    description: str
    config_schema: dict[str, Any]
    branches: list[str]
    expression_fields: list[str]
    side_effects: bool


class CredentialInfo(TypedDict):
    """A credential's metadata: the API never returns its data."""

    name: str
    type: str
    created_at: str
    updated_at: str
    created_by: str | None


class KeyInfo(TypedDict):
    """An API key's metadata (`prefix` is its public part, `dw_...`)."""

    id: str
    name: str
    role: Role
    prefix: str
    owner_id: str | None
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    revoked_at: str | None


class KeyCreated(KeyInfo):
    """`POST /auth/keys`: the metadata plus `key`, shown this once."""

    key: str


class User(TypedDict):
    """A user account (never its password)."""

    id: str
    email: str
    display_name: str
    role: Role
    disabled: bool
    created_at: str
    updated_at: str


class Me(TypedDict):
    """`GET /auth/me`: who the client is authenticated as, and what it may do."""

    kind: Literal["user", "key", "admin_key", "anonymous"]
    role: Role
    name: str
    user: User | None
    key_id: str | None
    permissions: list[str]
    session: bool


# Live events ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Snapshot:
    """The first item of an event stream: the run as it stands, with its definition."""

    run: Execution
    last_seq: int

    @property
    def type(self) -> str:
        """Always "snapshot", so `item.type` reads the same on every stream item."""
        return "snapshot"


@dataclass(frozen=True, slots=True)
class Event:
    """One event of a run: `run_started`, `node_completed`, `token`, `run_finished`, ...

    `seq` is the event's place in the run (None for `token` deltas, which are not stored).
    """

    seq: int | None
    type: str
    node_id: str | None
    timestamp: str | None
    data: dict[str, Any]


# Errors ---------------------------------------------------------------------------------
class ApiError(Exception):
    """The server refused a request: `status_code`, its `message`, and for 422 `detail`.

    `body` is the parsed error body (e.g. the workflows that still use a credential on
    a 409). The request's headers are not kept, so an error never carries the key.
    """

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        detail: list[ProblemDetail] | None = None,
        body: Any = None,
        method: str = "",
        url: str = "",
    ) -> None:
        self.status_code = status_code
        self.message = message
        self.detail: list[ProblemDetail] = detail or []
        self.body = body
        self.method = method
        self.url = url
        super().__init__(self._describe())

    def _describe(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        text = f"{self.status_code} {self.message}{where}"
        problems = "; ".join(_problem_text(problem) for problem in self.detail)
        return f"{text}: {problems}" if problems else text


class AuthenticationError(ApiError):
    """401: no API key, or one the server does not accept (unknown, revoked, expired)."""


class PermissionDenied(ApiError):
    """403: the key's role may not do this."""


class NotFound(ApiError):
    """404: no such workflow, execution, credential or key."""


class Conflict(ApiError):
    """409: conflicts with the current state (e.g. a credential still used by workflows)."""


class PayloadTooLarge(ApiError):
    """413: the request body is over the server's DUCTWORK_MAX_REQUEST_BYTES."""


class InvalidRequest(ApiError):
    """422: `detail` lists every problem (node, field, message)."""


class RateLimited(ApiError):
    """429: too many requests; `retry_after` is the seconds to wait, when the server said."""

    def __init__(self, status_code: int, message: str, **kwargs: Any) -> None:
        self.retry_after: float | None = kwargs.pop("retry_after", None)
        super().__init__(status_code, message, **kwargs)


_ERRORS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: InvalidRequest,
    429: RateLimited,
}


def _problem_text(problem: ProblemDetail) -> str:
    where = ".".join(part for part in (problem.get("node_id"), problem.get("field")) if part)
    return f"{where}: {problem['message']}" if where else problem["message"]


def _problems(items: list[Any]) -> list[ProblemDetail]:
    problems: list[ProblemDetail] = []
    for item in items:
        if not isinstance(item, dict):
            problems.append({"node_id": None, "field": None, "message": str(item)})
            continue
        field = item.get("field")
        if field is None and isinstance(item.get("loc"), list):  # FastAPI's default shape
            field = ".".join(str(part) for part in item["loc"] if part != "body") or None
        problems.append(
            {
                "node_id": item.get("node_id"),
                "field": field,
                "message": str(item.get("message", item.get("msg", "invalid"))),
            }
        )
    return problems


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def error_from_response(response: httpx.Response) -> ApiError:
    """The `ApiError` subclass for an error response (its body must have been read)."""
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:1000] or None
    message = response.reason_phrase or "error"
    detail: list[ProblemDetail] = []
    if isinstance(body, dict):
        raw = body.get("detail")
        if isinstance(raw, str):
            message = raw
        elif isinstance(raw, list):
            detail = _problems(raw)
            message = str(body.get("message") or "request is invalid")
        elif isinstance(body.get("message"), str):
            message = body["message"]
    elif isinstance(body, str) and body.strip():
        message = body.strip()[:300]
    kind = _ERRORS.get(status, ApiError)
    extra: dict[str, Any] = {}
    if kind is RateLimited:
        extra["retry_after"] = _retry_after(response.headers.get("Retry-After"))
    return kind(
        status,
        message,
        detail=detail,
        body=body,
        method=response.request.method,
        url=str(response.request.url),
        **extra,
    )


# Requests -------------------------------------------------------------------------------
class _BearerAuth(httpx.Auth):
    """Adds `Authorization: Bearer <key>`; its repr never shows the key."""

    __slots__ = ("_key",)

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key}"
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth ***>"


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Call(Generic[T]):
    """One API call: the request to send and how to read its answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] | None = None
    ok: frozenset[int] = frozenset()
    """Error statuses that are an answer, not a failure (503 of /health)."""
    read_timeout: float | None = None
    """At least this read timeout for this call (a sync execute waits for the run)."""


def _seg(value: str, what: str) -> str:
    """A path segment: refused when empty, percent-encoded so it stays one segment."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _parse_json(response: httpx.Response) -> Any:
    return response.json()


def _parse_none(response: httpx.Response) -> None:
    return None


def _parse_credentials(response: httpx.Response) -> list[CredentialInfo]:
    return cast(list[CredentialInfo], response.json()["items"])


def _timestamp(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware (e.g. datetime.now(UTC))")
    return value.isoformat()


def _page(limit: int, offset: int) -> dict[str, int]:
    return {"limit": limit, "offset": offset}


NEXT_CURSOR_HEADER = "X-Next-Cursor"
"""The runs lists' header with the `after` of the next page (absent on the last page)."""


def _parse_run_page(response: httpx.Response) -> tuple[list[Execution], str | None]:
    return cast(list[Execution], response.json()), response.headers.get(NEXT_CURSOR_HEADER)


class _Calls:
    """Every API call, built once for both clients (so they cannot drift apart)."""

    @staticmethod
    def health() -> _Call[Health]:
        return _Call("GET", "/health", _parse_json, ok=frozenset({503}))

    @staticmethod
    def me() -> _Call[Me]:
        return _Call("GET", "/auth/me", _parse_json)

    @staticmethod
    def node_types() -> _Call[list[NodeType]]:
        return _Call("GET", "/node-types", _parse_json)

    @staticmethod
    def create_workflow(definition: Mapping[str, Any]) -> _Call[Workflow]:
        return _Call("POST", "/workflows/", _parse_json, json=dict(definition))

    @staticmethod
    def get_workflow(workflow_id: str) -> _Call[Workflow]:
        return _Call("GET", f"/workflows/{_seg(workflow_id, 'workflow_id')}", _parse_json)

    @staticmethod
    def list_workflows(limit: int, offset: int, q: str | None) -> _Call[list[Workflow]]:
        params: dict[str, Any] = _page(limit, offset)
        if q is not None:
            params["q"] = q
        return _Call("GET", "/workflows/", _parse_json, params=params)

    @staticmethod
    def update_workflow(workflow_id: str, definition: Mapping[str, Any]) -> _Call[Workflow]:
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}"
        return _Call("PUT", path, _parse_json, json=dict(definition))

    @staticmethod
    def delete_workflow(workflow_id: str) -> _Call[None]:
        return _Call("DELETE", f"/workflows/{_seg(workflow_id, 'workflow_id')}", _parse_none)

    @staticmethod
    def validate_workflow(definition: Mapping[str, Any]) -> _Call[ValidationReport]:
        return _Call("POST", "/workflows/validate", _parse_json, json=dict(definition))

    @staticmethod
    def execute(
        workflow_id: str,
        inputs: Mapping[str, Any] | None,
        wait: bool,
        wait_seconds: float | None,
        idempotency_key: str | None,
    ) -> _Call[ExecuteResult]:
        body: dict[str, Any] = {"inputs": dict(inputs or {}), "async_execution": not wait}
        if wait_seconds is not None:
            body["wait_seconds"] = wait_seconds
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        # A sync execute is answered when the run ends: give it the wait plus a margin.
        read = (30.0 if wait_seconds is None else wait_seconds) + 15.0 if wait else None
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}/execute"
        return _Call("POST", path, _parse_json, json=body, headers=headers, read_timeout=read)

    @staticmethod
    def get_execution(
        execution_id: str, events: bool = True, node_states: bool = True
    ) -> _Call[Execution]:
        path = f"/workflows/executions/{_seg(execution_id, 'execution_id')}"
        params: dict[str, Any] = {}
        if not events:
            params["events"] = "false"
        if not node_states:
            params["node_states"] = "false"
        return _Call("GET", path, _parse_json, params=params or None)

    @staticmethod
    def event_page(execution_id: str, after: int, limit: int) -> _Call[EventPage]:
        path = f"/workflows/executions/{_seg(execution_id, 'execution_id')}/events/page"
        return _Call("GET", path, _parse_json, params={"after": after, "limit": limit})

    @staticmethod
    def list_executions(
        workflow_id: str | None,
        status: str | None,
        trigger: str | None,
        limit: int,
        offset: int,
        after: str | None = None,
    ) -> _Call[list[Execution]]:
        call = _Calls.executions_page(workflow_id, status, trigger, limit, offset, after)
        return _Call(call.method, call.path, _parse_json, params=call.params)

    @staticmethod
    def executions_page(
        workflow_id: str | None,
        status: str | None,
        trigger: str | None,
        limit: int,
        offset: int,
        after: str | None,
    ) -> _Call[tuple[list[Execution], str | None]]:
        """A runs list page with the next page's cursor (the `X-Next-Cursor` header)."""
        params: dict[str, Any] = _page(limit, offset) if after is None else {"limit": limit}
        if after is not None:
            params["after"] = after
        if status is not None:
            params["status"] = status
        if trigger is not None:
            params["trigger"] = trigger
        if workflow_id is None:
            return _Call("GET", "/workflows/executions", _parse_run_page, params=params)
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}/executions"
        return _Call("GET", path, _parse_run_page, params=params)

    @staticmethod
    def list_dead_letters(limit: int, offset: int) -> _Call[list[Execution]]:
        return _Calls.list_executions(None, "dead", None, limit, offset)

    @staticmethod
    def cancel(execution_id: str) -> _Call[Execution]:
        path = f"/workflows/executions/{_seg(execution_id, 'execution_id')}/cancel"
        return _Call("POST", path, _parse_json)

    @staticmethod
    def retry(execution_id: str, use_current_definition: bool) -> _Call[Execution]:
        path = f"/workflows/executions/{_seg(execution_id, 'execution_id')}/retry"
        body = {"use_current_definition": use_current_definition}
        return _Call("POST", path, _parse_json, json=body)

    @staticmethod
    def delete_execution(execution_id: str) -> _Call[None]:
        path = f"/workflows/executions/{_seg(execution_id, 'execution_id')}"
        return _Call("DELETE", path, _parse_none)

    @staticmethod
    def list_versions(workflow_id: str, limit: int, offset: int) -> _Call[list[WorkflowVersion]]:
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}/versions"
        return _Call("GET", path, _parse_json, params=_page(limit, offset))

    @staticmethod
    def get_version(workflow_id: str, version: int) -> _Call[Workflow]:
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}/versions/{int(version)}"
        return _Call("GET", path, _parse_json)

    @staticmethod
    def restore_version(workflow_id: str, version: int) -> _Call[Workflow]:
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}/versions/{int(version)}/restore"
        return _Call("POST", path, _parse_json)

    @staticmethod
    def diff_versions(workflow_id: str, old: int, new: int) -> _Call[dict[str, Any]]:
        path = f"/workflows/{_seg(workflow_id, 'workflow_id')}/versions/diff"
        return _Call("GET", path, _parse_json, params={"from": int(old), "to": int(new)})

    @staticmethod
    def create_credential(name: str, type: str, data: Mapping[str, Any]) -> _Call[CredentialInfo]:
        body = {"name": name, "type": type, "data": dict(data)}
        return _Call("POST", "/credentials", _parse_json, json=body)

    @staticmethod
    def list_credentials(limit: int, offset: int) -> _Call[list[CredentialInfo]]:
        return _Call("GET", "/credentials", _parse_credentials, params=_page(limit, offset))

    @staticmethod
    def get_credential(name: str) -> _Call[CredentialInfo]:
        return _Call("GET", f"/credentials/{_seg(name, 'name')}", _parse_json)

    @staticmethod
    def replace_credential(name: str, type: str, data: Mapping[str, Any]) -> _Call[CredentialInfo]:
        body = {"type": type, "data": dict(data)}
        return _Call("PUT", f"/credentials/{_seg(name, 'name')}", _parse_json, json=body)

    @staticmethod
    def delete_credential(name: str, force: bool) -> _Call[None]:
        params = {"force": "true"} if force else None
        path = f"/credentials/{_seg(name, 'name')}"
        return _Call("DELETE", path, _parse_none, params=params)

    @staticmethod
    def create_key(
        name: str, role: Role, expires_at: datetime | str | None, user_id: str | None
    ) -> _Call[KeyCreated]:
        body: dict[str, Any] = {"name": name, "role": role}
        if expires_at is not None:
            body["expires_at"] = _timestamp(expires_at)
        if user_id is not None:
            body["user_id"] = user_id
        return _Call("POST", "/auth/keys", _parse_json, json=body)

    @staticmethod
    def list_keys(all_users: bool, limit: int, offset: int) -> _Call[list[KeyInfo]]:
        params: dict[str, Any] = _page(limit, offset)
        if all_users:
            params["all"] = "true"
        return _Call("GET", "/auth/keys", _parse_json, params=params)

    @staticmethod
    def revoke_key(key_id: str) -> _Call[None]:
        return _Call("DELETE", f"/auth/keys/{_seg(key_id, 'key_id')}", _parse_none)


class _EventStream:
    """Resume state of one event stream, shared by the async and the sync client.

    The server gives every stored event an SSE id (its seq); after a dropped
    connection the stream is opened again with `Last-Event-ID` set to the last one
    received, so nothing is lost or repeated. The snapshot is yielded once: the one
    sent on a reconnect is dropped, since the events since then tell the same story.
    """

    def __init__(self, execution_id: str, after: int, max_reconnects: int) -> None:
        self.path = f"/workflows/executions/{_seg(execution_id, 'execution_id')}/events"
        self.last_id = after
        self.max_reconnects = max_reconnects
        self.failures = 0
        self.snapshot_seen = False
        self.finished = False
        self.retry_ms: int | None = None

    def headers(self) -> dict[str, str]:
        return {"Last-Event-ID": str(self.last_id)}

    def accept(self, sse: ServerSentEvent) -> Snapshot | Event | None:
        """The item for a frame, or None for one not to yield (a repeated snapshot)."""
        if sse.retry is not None:
            self.retry_ms = sse.retry
        payload = json.loads(sse.data) if sse.data else {}
        if sse.event == "snapshot":
            if self.snapshot_seen:
                return None
            self.snapshot_seen = True
            return Snapshot(run=payload["run"], last_seq=int(payload.get("last_seq", 0)))
        if sse.id:
            self.last_id = int(sse.id)
        self.failures = 0  # progress: the reconnect budget is for failures in a row
        event = Event(
            seq=payload.get("seq"),
            type=str(payload.get("type", sse.event)),
            node_id=payload.get("node_id"),
            timestamp=payload.get("timestamp"),
            data=payload.get("data") or {},
        )
        if event.type == "run_finished":
            self.finished = True
        return event

    def failed(self, error: BaseException | None) -> float:
        """Seconds to wait before reconnecting; re-raises once the budget is spent."""
        self.failures += 1
        if self.failures > self.max_reconnects:
            if error is not None:
                raise error
            raise ApiError(0, f"event stream of {self.path} kept ending before run_finished")
        base = self.retry_ms / 1000 if self.retry_ms is not None else 0.25
        return float(min(base * 2 ** (self.failures - 1), 5.0))


def _key_from(api_key: str | None) -> str | None:
    key = api_key if api_key is not None else os.environ.get("DUCTWORK_API_KEY")
    return key or None


def _url_from(base_url: str | None) -> str:
    return (base_url or os.environ.get("DUCTWORK_URL") or DEFAULT_URL).rstrip("/")


def _stream_timeout(timeout: httpx.Timeout) -> httpx.Timeout:
    read = None if timeout.read is None else max(timeout.read, _STREAM_READ_SECONDS)
    return httpx.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)


def _call_timeout(timeout: httpx.Timeout, call: _Call[Any]) -> httpx.Timeout:
    if call.read_timeout is None or timeout.read is None or timeout.read >= call.read_timeout:
        return timeout
    return httpx.Timeout(
        connect=timeout.connect, read=call.read_timeout, write=timeout.write, pool=timeout.pool
    )


class _Base:
    """Configuration shared by both clients."""

    def __init__(
        self,
        base_url: str | None,
        api_key: str | None,
        timeout: float | httpx.Timeout | None,
    ) -> None:
        self.base_url = _url_from(base_url)
        key = _key_from(api_key)
        self._auth = _BearerAuth(key) if key is not None else None
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)

    @property
    def has_api_key(self) -> bool:
        """Whether requests carry an API key (the key itself is not readable back)."""
        return self._auth is not None

    def __repr__(self) -> str:
        key = "***" if self._auth is not None else "None"
        return f"<{type(self).__name__} base_url={self.base_url!r} api_key={key}>"

    def _result(self, call: _Call[T], response: httpx.Response) -> T:
        if response.is_error and response.status_code not in call.ok:
            raise error_from_response(response)
        return call.parse(response)


# Async client ---------------------------------------------------------------------------
class AsyncClient(_Base):
    """The ductwork API over an `httpx.AsyncClient`; use it as `async with AsyncClient():`.

    `base_url` defaults to DUCTWORK_URL, else http://127.0.0.1:8000; `api_key` to
    DUCTWORK_API_KEY (sent as `Authorization: Bearer ...`; none when both are unset).
    `headers` are added to every request; `transport` replaces httpx's (for tests and
    custom networking).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=self._auth,
            timeout=self.timeout,
            headers=headers,
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _send(self, call: _Call[T]) -> T:
        response = await self._http.request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            headers=call.headers,
            timeout=_call_timeout(self.timeout, call),
        )
        return self._result(call, response)

    # System
    async def health(self) -> Health:
        """Liveness: `{"status": "ok", ...}`, or "unavailable" (503) without raising."""
        return await self._send(_Calls.health())

    async def me(self) -> Me:
        """Who this client is authenticated as, with its role and permissions."""
        return await self._send(_Calls.me())

    async def node_types(self) -> list[NodeType]:
        """Every node type with its config JSON Schema."""
        return await self._send(_Calls.node_types())

    # Workflows
    async def create_workflow(self, definition: Mapping[str, Any]) -> Workflow:
        """Save a workflow (`{name, nodes, edges, ...}`); InvalidRequest lists its problems."""
        return await self._send(_Calls.create_workflow(definition))

    async def get_workflow(self, workflow_id: str) -> Workflow:
        """One workflow, at its current version."""
        return await self._send(_Calls.get_workflow(workflow_id))

    async def list_workflows(
        self, *, q: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Workflow]:
        """A page of workflows, newest first; with `q`, those whose name contains it
        (case-insensitively, `q` taken literally, up to 200 characters)."""
        return await self._send(_Calls.list_workflows(limit, offset, q))

    async def update_workflow(self, workflow_id: str, definition: Mapping[str, Any]) -> Workflow:
        """Replace a workflow's definition: a new version (runs in flight keep theirs)."""
        return await self._send(_Calls.update_workflow(workflow_id, definition))

    async def delete_workflow(self, workflow_id: str) -> None:
        """Delete a workflow (its runs stay readable)."""
        await self._send(_Calls.delete_workflow(workflow_id))

    async def validate_workflow(self, definition: Mapping[str, Any]) -> ValidationReport:
        """Check a definition without saving it."""
        return await self._send(_Calls.validate_workflow(definition))

    # Executions
    async def execute(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        wait_seconds: float | None = None,
        idempotency_key: str | None = None,
    ) -> ExecuteResult:
        """Start a run. `wait=True` answers when it ends (up to `wait_seconds`, else the
        server's DUCTWORK_SYNC_WAIT_SECONDS); `wait=False` answers at once (queued).
        The same `idempotency_key` on the same workflow returns the existing run."""
        call = _Calls.execute(workflow_id, inputs, wait, wait_seconds, idempotency_key)
        return await self._send(call)

    async def get_execution(
        self, execution_id: str, *, events: bool = True, node_states: bool = True
    ) -> Execution:
        """A run: status, node states, logs, errors and result. `events=False` reads it
        without its events (`logs` empty: page them with `event_page`), `node_states=False`
        without node states (a summary of a large run)."""
        return await self._send(_Calls.get_execution(execution_id, events, node_states))

    async def event_page(self, execution_id: str, *, after: int = 0, limit: int = 100) -> EventPage:
        """Up to `limit` (1..1000) stored events of a run after seq `after`, in order."""
        return await self._send(_Calls.event_page(execution_id, after, limit))

    async def iter_events(
        self, execution_id: str, *, after: int = 0, page_size: int = 500
    ) -> AsyncIterator[RunEvent]:
        """Every stored event of a run after seq `after`, read a page at a time."""
        while True:
            page = await self.event_page(execution_id, after=after, limit=page_size)
            for item in page["events"]:
                yield item
            if page["next_after"] is None:
                return
            after = page["next_after"]

    async def list_executions(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        trigger: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
    ) -> list[Execution]:
        """Runs, newest first: one workflow's (with their logs; NotFound for an unknown
        workflow) or, without `workflow_id`, every workflow's (without logs, each with
        `workflow_name`). `status` is a run status or "dead" (dead letters); `trigger`
        what started the runs: "manual", "schedule", "webhook" or "error". `after` is a
        page cursor (see `iter_executions`, which follows them)."""
        call = _Calls.list_executions(workflow_id, status, trigger, limit, offset, after)
        return await self._send(call)

    async def iter_executions(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        trigger: str | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[Execution]:
        """Every run `list_executions` would list, page by page along the server's cursor
        (runs created meanwhile do not shift the pages)."""
        after: str | None = None
        while True:
            call = _Calls.executions_page(workflow_id, status, trigger, page_size, 0, after)
            items, after = await self._send(call)
            for item in items:
                yield item
            if after is None:
                return

    async def list_dead_letters(self, *, limit: int = 100, offset: int = 0) -> list[Execution]:
        """Runs that failed for good because advancing them kept failing, newest first."""
        return await self._send(_Calls.list_dead_letters(limit, offset))

    async def cancel(self, execution_id: str) -> Execution:
        """Stop a run wherever it runs."""
        return await self._send(_Calls.cancel(execution_id))

    async def retry(self, execution_id: str, *, use_current_definition: bool = False) -> Execution:
        """Resume a failed or cancelled run from its failed nodes."""
        return await self._send(_Calls.retry(execution_id, use_current_definition))

    async def delete_execution(self, execution_id: str) -> None:
        """Delete a finished run with its logs (Conflict for one still going: cancel first)."""
        await self._send(_Calls.delete_execution(execution_id))

    # Versions
    async def list_versions(
        self, workflow_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[WorkflowVersion]:
        """A workflow's saved versions, newest first."""
        return await self._send(_Calls.list_versions(workflow_id, limit, offset))

    async def get_version(self, workflow_id: str, version: int) -> Workflow:
        """The workflow as saved in `version`."""
        return await self._send(_Calls.get_version(workflow_id, version))

    async def restore_version(self, workflow_id: str, version: int) -> Workflow:
        """Save `version`'s definition again as the newest version (validated like a save)."""
        return await self._send(_Calls.restore_version(workflow_id, version))

    async def diff_versions(self, workflow_id: str, old: int, new: int) -> dict[str, Any]:
        """What changed from version `old` to `new`: nodes, edges and workflow fields."""
        return await self._send(_Calls.diff_versions(workflow_id, old, new))

    async def events(
        self, execution_id: str, *, after: int = 0, max_reconnects: int = 10
    ) -> AsyncIterator[Snapshot | Event]:
        """A run's `Snapshot`, then its events after seq `after`, until `run_finished`.

        A dropped connection is opened again with `Last-Event-ID` (nothing lost or
        repeated), up to `max_reconnects` failures in a row, then the error is raised.
        Ends at once for a finished run with nothing after `after`.
        """
        stream = _EventStream(execution_id, after, max_reconnects)
        timeout = _stream_timeout(self.timeout)
        while True:
            error: BaseException | None = None
            try:
                async with aconnect_sse(
                    self._http, "GET", stream.path, headers=stream.headers(), timeout=timeout
                ) as source:
                    response = source.response
                    if response.status_code == 204:
                        return
                    if response.status_code in _RETRYABLE_STREAM_STATUSES:
                        await response.aread()
                        error = error_from_response(response)
                    elif response.is_error:
                        await response.aread()
                        raise error_from_response(response)
                    else:
                        async for sse in source.aiter_sse():
                            item = stream.accept(sse)
                            if item is not None:
                                yield item
                            if stream.finished:
                                return
            except httpx.TransportError as exc:
                error = exc
            # Dropped, refused, or ended before run_finished: try again from the last id.
            await asyncio.sleep(stream.failed(error))

    # Credentials
    async def create_credential(
        self, name: str, type: str, data: Mapping[str, Any]
    ) -> CredentialInfo:
        """Store a credential (encrypted); its data is never returned."""
        return await self._send(_Calls.create_credential(name, type, data))

    async def list_credentials(self, *, limit: int = 100, offset: int = 0) -> list[CredentialInfo]:
        """A page of credentials' metadata."""
        return await self._send(_Calls.list_credentials(limit, offset))

    async def get_credential(self, name: str) -> CredentialInfo:
        """One credential's metadata."""
        return await self._send(_Calls.get_credential(name))

    async def replace_credential(
        self, name: str, type: str, data: Mapping[str, Any]
    ) -> CredentialInfo:
        """Replace a credential's type and data."""
        return await self._send(_Calls.replace_credential(name, type, data))

    async def delete_credential(self, name: str, *, force: bool = False) -> None:
        """Delete a credential; Conflict while saved workflows use it, unless `force`."""
        await self._send(_Calls.delete_credential(name, force))

    # API keys
    async def create_key(
        self,
        name: str,
        role: Role,
        *,
        expires_at: datetime | str | None = None,
        user_id: str | None = None,
    ) -> KeyCreated:
        """Create an API key; `key` in the answer is shown this once."""
        return await self._send(_Calls.create_key(name, role, expires_at, user_id))

    async def list_keys(
        self, *, all_users: bool = False, limit: int = 100, offset: int = 0
    ) -> list[KeyInfo]:
        """Your API keys' metadata (every user's with `all_users`, for admins)."""
        return await self._send(_Calls.list_keys(all_users, limit, offset))

    async def revoke_key(self, key_id: str) -> None:
        """Revoke an API key, at once on every server process."""
        await self._send(_Calls.revoke_key(key_id))


# Sync client ----------------------------------------------------------------------------
class Client(_Base):
    """The ductwork API over an `httpx.Client`; use it as `with Client():`.

    The same methods as `AsyncClient`, blocking. See `AsyncClient` for the options.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(base_url, api_key, timeout)
        self._http = httpx.Client(
            base_url=self.base_url,
            auth=self._auth,
            timeout=self.timeout,
            headers=headers,
            transport=transport,
            follow_redirects=False,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _send(self, call: _Call[T]) -> T:
        response = self._http.request(
            call.method,
            call.path,
            json=call.json,
            params=call.params,
            headers=call.headers,
            timeout=_call_timeout(self.timeout, call),
        )
        return self._result(call, response)

    # System
    def health(self) -> Health:
        """Liveness: `{"status": "ok", ...}`, or "unavailable" (503) without raising."""
        return self._send(_Calls.health())

    def me(self) -> Me:
        """Who this client is authenticated as, with its role and permissions."""
        return self._send(_Calls.me())

    def node_types(self) -> list[NodeType]:
        """Every node type with its config JSON Schema."""
        return self._send(_Calls.node_types())

    # Workflows
    def create_workflow(self, definition: Mapping[str, Any]) -> Workflow:
        """Save a workflow (`{name, nodes, edges, ...}`); InvalidRequest lists its problems."""
        return self._send(_Calls.create_workflow(definition))

    def get_workflow(self, workflow_id: str) -> Workflow:
        """One workflow, at its current version."""
        return self._send(_Calls.get_workflow(workflow_id))

    def list_workflows(
        self, *, q: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Workflow]:
        """A page of workflows, newest first; with `q`, those whose name contains it
        (case-insensitively, `q` taken literally, up to 200 characters)."""
        return self._send(_Calls.list_workflows(limit, offset, q))

    def update_workflow(self, workflow_id: str, definition: Mapping[str, Any]) -> Workflow:
        """Replace a workflow's definition: a new version (runs in flight keep theirs)."""
        return self._send(_Calls.update_workflow(workflow_id, definition))

    def delete_workflow(self, workflow_id: str) -> None:
        """Delete a workflow (its runs stay readable)."""
        self._send(_Calls.delete_workflow(workflow_id))

    def validate_workflow(self, definition: Mapping[str, Any]) -> ValidationReport:
        """Check a definition without saving it."""
        return self._send(_Calls.validate_workflow(definition))

    # Executions
    def execute(
        self,
        workflow_id: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        wait: bool = True,
        wait_seconds: float | None = None,
        idempotency_key: str | None = None,
    ) -> ExecuteResult:
        """Start a run; see `AsyncClient.execute`."""
        return self._send(_Calls.execute(workflow_id, inputs, wait, wait_seconds, idempotency_key))

    def get_execution(
        self, execution_id: str, *, events: bool = True, node_states: bool = True
    ) -> Execution:
        """A run: status, node states, logs, errors and result; see `AsyncClient.get_execution`."""
        return self._send(_Calls.get_execution(execution_id, events, node_states))

    def event_page(self, execution_id: str, *, after: int = 0, limit: int = 100) -> EventPage:
        """Up to `limit` (1..1000) stored events of a run after seq `after`, in order."""
        return self._send(_Calls.event_page(execution_id, after, limit))

    def iter_events(
        self, execution_id: str, *, after: int = 0, page_size: int = 500
    ) -> Iterator[RunEvent]:
        """Every stored event of a run after seq `after`, read a page at a time."""
        while True:
            page = self.event_page(execution_id, after=after, limit=page_size)
            yield from page["events"]
            if page["next_after"] is None:
                return
            after = page["next_after"]

    def list_executions(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        trigger: str | None = None,
        limit: int = 100,
        offset: int = 0,
        after: str | None = None,
    ) -> list[Execution]:
        """Runs, newest first; see `AsyncClient.list_executions`."""
        call = _Calls.list_executions(workflow_id, status, trigger, limit, offset, after)
        return self._send(call)

    def iter_executions(
        self,
        workflow_id: str | None = None,
        *,
        status: str | None = None,
        trigger: str | None = None,
        page_size: int = 100,
    ) -> Iterator[Execution]:
        """Every run `list_executions` would list, following the server's page cursor."""
        after: str | None = None
        while True:
            call = _Calls.executions_page(workflow_id, status, trigger, page_size, 0, after)
            items, after = self._send(call)
            yield from items
            if after is None:
                return

    def list_dead_letters(self, *, limit: int = 100, offset: int = 0) -> list[Execution]:
        """Runs that failed for good because advancing them kept failing, newest first."""
        return self._send(_Calls.list_dead_letters(limit, offset))

    def cancel(self, execution_id: str) -> Execution:
        """Stop a run wherever it runs."""
        return self._send(_Calls.cancel(execution_id))

    def retry(self, execution_id: str, *, use_current_definition: bool = False) -> Execution:
        """Resume a failed or cancelled run from its failed nodes."""
        return self._send(_Calls.retry(execution_id, use_current_definition))

    def delete_execution(self, execution_id: str) -> None:
        """Delete a finished run with its logs (Conflict for one still going: cancel first)."""
        self._send(_Calls.delete_execution(execution_id))

    # Versions
    def list_versions(
        self, workflow_id: str, *, limit: int = 100, offset: int = 0
    ) -> list[WorkflowVersion]:
        """A workflow's saved versions, newest first."""
        return self._send(_Calls.list_versions(workflow_id, limit, offset))

    def get_version(self, workflow_id: str, version: int) -> Workflow:
        """The workflow as saved in `version`."""
        return self._send(_Calls.get_version(workflow_id, version))

    def restore_version(self, workflow_id: str, version: int) -> Workflow:
        """Save `version`'s definition again as the newest version (validated like a save)."""
        return self._send(_Calls.restore_version(workflow_id, version))

    def diff_versions(self, workflow_id: str, old: int, new: int) -> dict[str, Any]:
        """What changed from version `old` to `new`: nodes, edges and workflow fields."""
        return self._send(_Calls.diff_versions(workflow_id, old, new))

    def events(
        self, execution_id: str, *, after: int = 0, max_reconnects: int = 10
    ) -> Iterator[Snapshot | Event]:
        """A run's `Snapshot`, then its events until `run_finished`; see `AsyncClient.events`."""
        stream = _EventStream(execution_id, after, max_reconnects)
        timeout = _stream_timeout(self.timeout)
        while True:
            error: BaseException | None = None
            try:
                with connect_sse(
                    self._http, "GET", stream.path, headers=stream.headers(), timeout=timeout
                ) as source:
                    response = source.response
                    if response.status_code == 204:
                        return
                    if response.status_code in _RETRYABLE_STREAM_STATUSES:
                        response.read()
                        error = error_from_response(response)
                    elif response.is_error:
                        response.read()
                        raise error_from_response(response)
                    else:
                        for sse in source.iter_sse():
                            item = stream.accept(sse)
                            if item is not None:
                                yield item
                            if stream.finished:
                                return
            except httpx.TransportError as exc:
                error = exc
            time.sleep(stream.failed(error))

    # Credentials
    def create_credential(self, name: str, type: str, data: Mapping[str, Any]) -> CredentialInfo:
        """Store a credential (encrypted); its data is never returned."""
        return self._send(_Calls.create_credential(name, type, data))

    def list_credentials(self, *, limit: int = 100, offset: int = 0) -> list[CredentialInfo]:
        """A page of credentials' metadata."""
        return self._send(_Calls.list_credentials(limit, offset))

    def get_credential(self, name: str) -> CredentialInfo:
        """One credential's metadata."""
        return self._send(_Calls.get_credential(name))

    def replace_credential(self, name: str, type: str, data: Mapping[str, Any]) -> CredentialInfo:
        """Replace a credential's type and data."""
        return self._send(_Calls.replace_credential(name, type, data))

    def delete_credential(self, name: str, *, force: bool = False) -> None:
        """Delete a credential; Conflict while saved workflows use it, unless `force`."""
        self._send(_Calls.delete_credential(name, force))

    # API keys
    def create_key(
        self,
        name: str,
        role: Role,
        *,
        expires_at: datetime | str | None = None,
        user_id: str | None = None,
    ) -> KeyCreated:
        """Create an API key; `key` in the answer is shown this once."""
        return self._send(_Calls.create_key(name, role, expires_at, user_id))

    def list_keys(
        self, *, all_users: bool = False, limit: int = 100, offset: int = 0
    ) -> list[KeyInfo]:
        """Your API keys' metadata (every user's with `all_users`, for admins)."""
        return self._send(_Calls.list_keys(all_users, limit, offset))

    def revoke_key(self, key_id: str) -> None:
        """Revoke an API key, at once on every server process."""
        self._send(_Calls.revoke_key(key_id))
