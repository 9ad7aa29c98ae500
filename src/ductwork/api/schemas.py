"""Error bodies every route documents, so the OpenAPI document matches what is sent.

`Problem` is the 422 body (`ductwork.api.errors`): which node, which field, why.
`ErrorDetail` is every other error body: 401, 403, 404, 409, 413, 415, 429.
Routes declare them with `responses=error_responses(404, 422)`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from ductwork.models import NodeStatus, RunStatus, WorkflowDefinition


class ProblemDetail(BaseModel):
    """One reason a request was refused: the node and field it concerns, and why."""

    node_id: str | None = None
    field: str | None = None
    message: str


class Problem(BaseModel):
    """The 422 body: a summary and every problem found."""

    message: str
    detail: list[ProblemDetail]


class ErrorDetail(BaseModel):
    """The body of every error except 422: one sentence saying what went wrong."""

    detail: str


_DESCRIPTIONS: Final[dict[int, str]] = {
    400: "Bad request",
    401: "Not authenticated: no valid API key or session",
    403: "Authenticated, but the role may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported media type: JSON routes accept application/json only",
    422: "The request is invalid: which node, which field, why",
    429: "Too many requests: retry after the Retry-After header's seconds",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for `statuses`: 422 is a `Problem`, every other an `ErrorDetail`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": Problem if status == 422 else ErrorDetail,
            "description": _DESCRIPTIONS.get(status, "Error"),
        }
        if status == 429:
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again",
                    "schema": {"type": "integer"},
                }
            }
        responses[status] = entry
    return responses


class ErrorMessage(BaseModel):
    """The body of a 502/503 from AI generation: what failed, naming the setting to fix."""

    message: str


class GenerationProblem(Problem):
    """The 422 of AI generation: a `Problem`, plus the rounds spent when the model's
    answers never validated (absent when the request itself was invalid)."""

    rounds: int | None = None
    workflow: dict[str, Any] | None = Field(
        default=None,
        description="The last answer as a workflow, when it was a well-formed one the "
        "engine refused: open it in an editor with `detail` pinned to its nodes.",
    )


# Success bodies. Routes send plain dicts (`Workflow.public()`, `ductwork.views`) through
# orjson; these models only describe them, so `response_model=` documents the shape
# without FastAPI re-validating every response. Views that carry open-ended data
# (node state metadata, a node's extra builder fields) allow extra keys.


class Workflow(WorkflowDefinition):
    """A stored workflow as the API serves it (`Workflow.public()`): the definition's
    fields, edges as `from`/`to`, plus identity, version and times."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str
    mongo_id: str = Field(alias="_id", description="Same as `id` (the seed's MongoDB spelling).")
    version: int
    created_at: datetime
    updated_at: datetime


class ValidationReport(BaseModel):
    """`POST /workflows/validate`: whether the definition is valid, and every issue."""

    valid: bool
    issues: list[ProblemDetail]


class NodeStateView(BaseModel):
    """One node's state in a run (extra keys: node-specific metadata, e.g. `parked`)."""

    model_config = ConfigDict(extra="allow")

    status: NodeStatus
    output: Any = None
    cached: bool
    latency_ms: float | None
    error: str | None
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    branch: str | None = None
    wake_at: datetime | None = None


class LogLine(BaseModel):
    """One line of a run's `logs`, read off its events."""

    timestamp: datetime
    node_id: str | None
    level: str
    message: str


class RunError(BaseModel):
    """One entry of a run's `errors`: a node's final failure, or the run's own."""

    timestamp: datetime | None
    node_id: str | None
    error: Any = None
    attempt: int | None


class RunTriggerType(StrEnum):
    """What can start a run: the `type` of its `trigger`, and the runs lists' `trigger`."""

    MANUAL = "manual"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    ERROR = "error"
    SUB_WORKFLOW = "sub-workflow"


class RunTrigger(BaseModel):
    """What started a run, by `type` (`ductwork.models.Run.trigger`):

    - `manual`: `POST /workflows/{id}/execute`, or `ductwork run FILE`;
    - `schedule`: one of the workflow's schedules (`key`) at its `slot`, the ISO time
      the slot was due;
    - `webhook`: a request to `/hooks/{path}` (`path`, `method`);
    - `error`: the workflow runs as the error workflow of a failed run (`execution_id`,
      `workflow_id`: the run that failed and its workflow);
    - `sub-workflow`: a `sub-workflow` node (`node_id`) of run `execution_id` of
      workflow `workflow_id` started it.
    """

    model_config = ConfigDict(extra="allow")

    type: RunTriggerType = Field(examples=["manual"])
    key: str | None = Field(default=None, description="`schedule`: which schedule fired.")
    slot: str | None = Field(
        default=None,
        description="`schedule`: the time the slot was due (ISO 8601, UTC).",
        examples=["2026-12-03T07:40:00Z"],
    )
    path: str | None = Field(default=None, description="`webhook`: the hook's path.")
    method: str | None = Field(default=None, description="`webhook`: the request's method.")
    execution_id: str | None = Field(
        default=None, description="`error`: the failed run; `sub-workflow`: the parent run."
    )
    workflow_id: str | None = Field(
        default=None, description="`error`, `sub-workflow`: its workflow."
    )
    node_id: str | None = Field(
        default=None, description="`sub-workflow`: the parent's node that started the run."
    )


class ModelUsage(BaseModel):
    """A run's usage of one model."""

    prompt_tokens: int
    completion_tokens: int
    cost: float
    calls: int


class RunUsage(BaseModel):
    """A run's token usage and cost so far (`ductwork.usage.RunUsage`)."""

    prompt_tokens: int = Field(examples=[1200])
    completion_tokens: int = Field(examples=[340])
    total_tokens: int = Field(examples=[1540])
    cost: float = Field(examples=[0.00039], description="US dollars (see `unpriced_calls`).")
    calls: int = Field(examples=[2], description="Upstream LLM calls, repairs and fallbacks too.")
    unpriced_calls: int = Field(
        examples=[0],
        description="Calls whose cost is unknown (neither reported by the provider nor in "
        "DUCTWORK_LLM_PRICES): they count as 0 here and in budgets.",
    )
    by_model: dict[str, ModelUsage]


class RunView(BaseModel):
    """An execution as `GET /workflows/executions/{id}` shows it (`ductwork.views.run_view`)."""

    model_config = ConfigDict(extra="allow")

    execution_id: str
    workflow_id: str
    workflow_version: int
    status: RunStatus
    start_time: datetime | None
    end_time: datetime | None
    created_at: datetime
    variables: dict[str, Any]
    node_states: dict[str, NodeStateView]
    result: Any = None
    error: str | None
    logs: list[LogLine]
    errors: list[RunError]
    wake_at: datetime | None = None
    redrives: int | None = None
    dead_letter: bool | None = None
    queued_reason: str | None = Field(
        default=None,
        description="Why a `queued` run has not started: a concurrency limit is full "
        "(`settings.max_concurrent_runs`, DUCTWORK_MAX_ACTIVE_RUNS).",
        examples=["waiting for a slot: the workflow allows 2 concurrent runs at once (2 active)"],
    )
    worker: str | None = Field(default=None, description="The worker holding an unfinished run.")
    trigger: RunTrigger | None = Field(
        description="What started the run; null for runs stored before triggers were recorded."
    )
    parent_execution_id: str | None = Field(
        default=None, description="The run whose `sub-workflow` node started this one."
    )
    parent_node_id: str | None = Field(
        default=None, description="That `sub-workflow` node's id in the parent run."
    )
    depth: int = Field(default=0, description="Sub-workflow nesting: 0 for a top-level run.")
    usage: RunUsage | None = Field(
        default=None, description="Token usage and cost so far; null: no LLM call yet."
    )
    cost: float = Field(default=0.0, description="`usage.cost`, 0 without usage (US dollars).")


class RunListItem(RunView):
    """A run in `GET /workflows/executions` (`ductwork.views.run_list_item`): read without
    its events, so `logs` is empty; `errors` still holds the run's own error."""

    workflow_name: str = Field(description="The name of the definition the run ran.")
    dead_letter: bool = Field(description="The engine gave up on the run (see `status=dead`).")


class RunStatusFilter(StrEnum):
    """`status` of the runs lists: a run status, or `dead` for dead letters."""

    QUEUED = "queued"
    RUNNING = "running"
    WAITING = "waiting"
    SUCCESS = "success"
    ERROR = "error"
    CANCELLED = "cancelled"
    DEAD = "dead"


if {f.value for f in RunStatusFilter} != {s.value for s in RunStatus} | {"dead"}:
    raise RuntimeError("RunStatusFilter must name every RunStatus, plus `dead`")


class LastRun(BaseModel):
    """A workflow's newest run (`ductwork.views.run_summary_view`)."""

    execution_id: str
    status: RunStatus
    created_at: datetime
    start_time: datetime | None
    end_time: datetime | None


class WorkflowListItem(Workflow):
    """A workflow in `GET /workflows/`: the stored workflow plus its newest run."""

    last_run: LastRun | None = Field(description="null when the workflow has never run.")


class ExecuteView(BaseModel):
    """`POST /workflows/{id}/execute` (`ductwork.views.execute_view`): the outcome fields
    are present once the run has finished."""

    model_config = ConfigDict(extra="allow")

    execution_id: str
    workflow_id: str
    status: RunStatus
    message: str
    started_at: datetime
    end_time: datetime | None = None
    result: Any = None
    error: str | None = None
    node_states: dict[str, NodeStateView] | None = None
    usage: RunUsage | None = None
    cost: float | None = None


class NodeType(BaseModel):
    """A node type with the JSON Schema of its config, for builder UIs."""

    type: str
    description: str
    config_schema: dict[str, Any]
    branches: list[str]
    expression_fields: list[str]
    raw_fields: list[str] = Field(default_factory=list)
    """Config fields used as written, never templated (a `code` node's source): builder
    UIs edit them as plain text or code, not as templates."""
    side_effects: bool


class TriggerType(BaseModel):
    """A trigger type (`schedule`, `webhook`) with the JSON Schema of its entry in
    a workflow's `triggers` list, for builder UIs."""

    type: str
    description: str
    config_schema: dict[str, Any]


class Health(BaseModel):
    """`GET /health`: 200 when the store answers (with version and active runs), else 503
    with no detail (the cause is in the server's log)."""

    status: Literal["ok", "unavailable"]
    store: Literal["ok", "unavailable"]
    version: str | None = None
    active_runs: int | None = None


class GenerateResult(BaseModel):
    """`POST /ai/workflows/generate`: the generated workflow; `workflow_id` when saved."""

    workflow: WorkflowDefinition
    rounds: int
    saved: bool
    model: str
    cached: bool
    workflow_id: str | None = None


_FASTAPI_422: Final = ("HTTPValidationError", "ValidationError")
_METHODS: Final = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _error_response(status: int) -> dict[str, Any]:
    model = Problem if status == 422 else ErrorDetail
    return {
        "description": _DESCRIPTIONS[status],
        "content": {"application/json": {"schema": _ref(model)}},
    }


IsPublic = Callable[[str, str], bool]
"""(method, path template) -> whether the operation is open without credentials."""


def make_truthful(document: dict[str, Any], is_public: IsPublic) -> dict[str, Any]:
    """Finish an OpenAPI document FastAPI generated so it says what the app sends.

    - A 422 is a `Problem` everywhere: FastAPI's default `HTTPValidationError`
      (which `ductwork.api.errors` never sends) is replaced and dropped.
    - Every operation that is not public documents 401 and 403 (the auth guard
      answers them before any route runs).
    - Every operation with a request body documents 413 (too large, refused before
      it is read) and 415 (JSON routes accept `application/json` only).
    """
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, model in (("Problem", Problem), ("ProblemDetail", ProblemDetail)):
        components.setdefault(name, model.model_json_schema(ref_template=_REF_TEMPLATE))
    components.setdefault("ErrorDetail", ErrorDetail.model_json_schema())
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in _METHODS:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            documented_422 = responses.get("422")
            if documented_422 is not None and _FASTAPI_422[0] in str(documented_422):
                responses["422"] = _error_response(422)
            added: list[int] = []
            if not is_public(method, path):
                added += [401, 403]
            if "requestBody" in operation:
                added += [413, 415]
            for status in added:
                responses.setdefault(str(status), _error_response(status))
            operation["responses"] = dict(sorted(responses.items()))
    for name in _FASTAPI_422:
        components.pop(name, None)
    return document


_REF_TEMPLATE: Final = "#/components/schemas/{model}"


def install_openapi(app: FastAPI, is_public: IsPublic) -> None:
    """Serve `make_truthful(...)` of FastAPI's generated document as `/openapi.json`.

    `is_public` is the auth guard's own table (`ductwork.api.guard.is_public`), so the
    document and the guard cannot disagree about which operations need credentials.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = make_truthful(generate(), is_public)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


# Paging of large runs (issue 12, helper "large") -------------------------------------

NEXT_CURSOR_HEADER: Final = "X-Next-Cursor"
"""The runs lists' header carrying the `after` token of the next page (absent on the last)."""


class RunEventItem(BaseModel):
    """One stored event of a run, as the live streams send it."""

    seq: int
    type: str
    node_id: str | None
    timestamp: datetime
    data: dict[str, Any]


class EventPage(BaseModel):
    """A page of a run's events (`GET /workflows/executions/{id}/events/page`)."""

    events: list[RunEventItem] = Field(description="In seq order, at most `limit` of them.")
    next_after: int | None = Field(
        description="The `after` of the next page (the last seq here); null when no "
        "stored event followed this page when it was read (a running run may add more: "
        "ask again with the last seq seen, or follow the live stream)."
    )
