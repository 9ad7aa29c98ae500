"""Workflow and execution routes: SEED.md's contract plus validate, cancel and retry.

Order matters: `/workflows/executions/...` and `/workflows/validate` are declared
before `/workflows/{workflow_id}` so they are not captured by it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ductwork.api.deps import App
from ductwork.api.limits import (
    MAX_ID_LENGTH,
    MAX_NAME_SEARCH_LENGTH,
    CheckedJSONRoute,
    ExecuteRateLimit,
    Limit,
    Offset,
    RequestRejected,
    ResourceId,
    Seq,
    check_size,
)
from ductwork.api.responses import JSON
from ductwork.api.schemas import (
    NEXT_CURSOR_HEADER,
    EventPage,
    ExecuteView,
    RunListItem,
    RunStatusFilter,
    RunTriggerType,
    RunView,
    ValidationReport,
    Workflow,
    WorkflowListItem,
    error_responses,
)
from ductwork.live import event_json
from ductwork.models import Run, RunStatus, WorkflowDefinition
from ductwork.store.base import RunCursor, RunQuery
from ductwork.views import execute_view, run_list_item, run_view, workflow_view

router = APIRouter(prefix="/workflows", tags=["workflows"], route_class=CheckedJSONRoute)

CALLER_KEY_PREFIX: Final = "api:"
"""What the stored idempotency key of a run started by `POST .../execute` starts with,
before the caller's `Idempotency-Key` (webhook calls use `hook:`)."""

SEED_WORKFLOW: dict[str, Any] = {
    "name": "Test Workflow",
    "nodes": [
        {"id": "start", "type": "start", "config": {}, "position": {"x": 0, "y": 0}},
        {
            "id": "ai1",
            "type": "ai-processor",
            "config": {"prompt": "Say hello"},
            "position": {"x": 200, "y": 0},
        },
        {"id": "end", "type": "end", "config": {}, "position": {"x": 400, "y": 0}},
    ],
    "edges": [{"from": "start", "to": "ai1"}, {"from": "ai1", "to": "end"}],
    "variables": [],
    "status": "active",
    "metadata": {"description": "Test", "author": "Me", "version": "1.0"},
}

WorkflowBody = Annotated[
    WorkflowDefinition, Body(openapi_examples={"seed": {"value": SEED_WORKFLOW}})
]


class ExecuteRequest(BaseModel):
    """SEED.md's execute body."""

    inputs: dict[str, Any] = Field(default_factory=dict, examples=[{"user_name": "John"}])
    async_execution: bool = Field(
        default=False,
        description="false: answer when the run ends (up to DUCTWORK_SYNC_WAIT_SECONDS); "
        "true: answer at once with status queued.",
    )
    wait_seconds: float | None = Field(
        default=None, ge=0, le=3600, description="Override the sync wait for this call."
    )


class RetryRequest(BaseModel):
    use_current_definition: bool = Field(
        default=False,
        description="Re-run with the workflow's current definition instead of the run's own.",
    )


@router.post(
    "/",
    status_code=201,
    summary="Create a workflow",
    response_model=Workflow,
    responses=error_responses(422),
)
async def create_workflow(app: App, definition: WorkflowBody) -> JSON:
    workflow = await app.create_workflow(definition)
    return JSON(status_code=201, content=workflow.public())


StatusFilter = Annotated[
    RunStatusFilter | None,
    Query(description="Only runs with this status; `dead`: runs the engine gave up on."),
]
TriggerFilter = Annotated[
    RunTriggerType | None,
    Query(
        description="Only runs started by this trigger type: `manual` (execute), `schedule`, "
        "`webhook` (`/hooks/{path}`) or `error` (runs of an error workflow).",
    ),
]


NameSearch = Annotated[
    str | None,
    Query(
        max_length=MAX_NAME_SEARCH_LENGTH,
        description="Only workflows whose name contains this text, case-insensitively; "
        "`%`, `_` and regex characters match themselves. Empty: every workflow.",
    ),
]


MAX_CURSOR_LENGTH: Final = 400
"""Longer than any token `RunCursor.token` writes for an id of MAX_ID_LENGTH."""

After = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=MAX_CURSOR_LENGTH,
        description="The `X-Next-Cursor` of the previous page: the runs after its last "
        "run, in the same order. Runs created meanwhile do not shift the pages, and a deep "
        "page costs what the first one does. Not with `offset`.",
    ),
]

NEXT_PAGE_HEADERS: Final[dict[str, Any]] = {
    NEXT_CURSOR_HEADER: {
        "description": "The `after` of the next page; absent when this page is the last.",
        "schema": {"type": "string"},
    },
    "Link": {
        "description": 'The next page\'s URL, `<...>; rel="next"` (RFC 8288); absent on '
        "the last page.",
        "schema": {"type": "string"},
    },
}
"""The paging headers of the runs lists, as the OpenAPI document shows them."""


def run_cursor(after: str | None, offset: int) -> RunCursor | None:
    """The runs lists' `after` parameter as a cursor (422 for a token this server did
    not write, or for one given with an offset)."""
    if after is None:
        return None
    if offset:
        raise RequestRejected("give either `after` or `offset`, not both", "offset")
    try:
        return RunCursor.parse(after)
    except ValueError as exc:
        raise RequestRejected(str(exc), "after") from None


def run_page(request: Request, runs: list[Run], limit: int, view: Any) -> JSON:
    """A runs list's answer: the first `limit` of `runs` (read with one more, to know
    whether a next page exists), plus the headers that lead to it."""
    headers: dict[str, str] = {}
    if len(runs) > limit:
        runs = runs[:limit]
        token = RunCursor.after(runs[-1]).token()
        url = request.url.remove_query_params("offset").include_query_params(after=token)
        headers[NEXT_CURSOR_HEADER] = token
        headers["Link"] = f'<{url}>; rel="next"'
    return JSON([view(run) for run in runs], headers=headers)


def run_query(status: RunStatusFilter | None, trigger: RunTriggerType | None) -> RunQuery:
    """The store query for the runs lists' `status` and `trigger` parameters."""
    trigger_type = None if trigger is None else trigger.value
    if status is RunStatusFilter.DEAD:
        return RunQuery(dead_letter=True, trigger_type=trigger_type)
    return RunQuery(
        status=None if status is None else RunStatus(status.value), trigger_type=trigger_type
    )


@router.get(
    "/",
    summary="List workflows",
    description="Newest first, each with `last_run`: its newest run, or null. With `q`, "
    "only workflows whose name contains `q`, in any case; paging applies to the matches.",
    response_model=list[WorkflowListItem],
    responses=error_responses(422),
)
async def list_workflows(
    app: App, q: NameSearch = None, limit: Limit = 100, offset: Offset = 0
) -> JSON:
    workflows = await app.list_workflows(limit=limit, offset=offset, q=q)
    last_runs = await app.last_runs(workflows)
    return JSON([workflow_view(workflow, last_runs.get(workflow.id)) for workflow in workflows])


@router.post(
    "/validate",
    summary="Validate a workflow without saving it",
    description="200 with `valid: false` and the issues for a definition that parses but "
    "does not validate; 422 when the body is not a workflow at all.",
    responses=error_responses(422),
)
async def validate_workflow(app: App, definition: WorkflowBody) -> ValidationReport:
    issues = await app.validate(definition)
    return ValidationReport(valid=not issues, issues=[issue.model_dump() for issue in issues])


@router.get(
    "/executions",
    summary="List executions of every workflow",
    description="Newest first, filtered by `status` (`dead`: runs that failed for good "
    "because advancing them kept failing, DUCTWORK_MAX_RUN_REDRIVES; retry one to try it "
    "again), `workflow_id`, `trigger` and `parent_execution_id` (the child runs of a run's "
    "sub-workflow nodes). Items carry no events: read one execution for its logs. Paged "
    "by `limit` and a cursor: the `X-Next-Cursor` header (and `Link: rel=next`) of a full "
    "page is the `after` of the next one.",
    response_model=list[RunListItem],
    responses={200: {"headers": NEXT_PAGE_HEADERS}, **error_responses(422)},
)
async def list_all_executions(
    app: App,
    request: Request,
    status: StatusFilter = None,
    workflow_id: Annotated[
        str | None,
        Query(min_length=1, max_length=MAX_ID_LENGTH, description="Only this workflow's runs."),
    ] = None,
    trigger: TriggerFilter = None,
    parent_execution_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_ID_LENGTH,
            description="Only the runs this run's `sub-workflow` nodes started.",
        ),
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
    after: After = None,
) -> JSON:
    cursor = run_cursor(after, offset)
    query = replace(
        run_query(status, trigger),
        workflow_id=workflow_id,
        parent_execution_id=parent_execution_id,
    )
    runs = await app.find_runs(query, limit=limit + 1, offset=offset, after=cursor)
    return run_page(request, runs, limit, run_list_item)


@router.get(
    "/executions/{execution_id}",
    summary="Get an execution's status",
    response_model=RunView,
    responses=error_responses(404, 422),
)
async def get_execution(
    app: App,
    execution_id: ResourceId,
    events: Annotated[
        bool,
        Query(
            description="false: `logs` is empty and `errors` holds only the run's own "
            "error, read without the run's events (page them with "
            "`GET /workflows/executions/{execution_id}/events/page`).",
        ),
    ] = True,
    node_states: Annotated[
        bool, Query(description="false: `node_states` is empty (a summary of a large run).")
    ] = True,
) -> JSON:
    run = await app.get_run(execution_id, with_events=events, with_node_states=node_states)
    return JSON(run_view(run))


@router.get(
    "/executions/{execution_id}/events/page",
    summary="Read a page of an execution's events",
    description="The run's stored events after seq `after`, in order, at most `limit`; "
    "`next_after` is the `after` of the next page (null: none stored yet). The same "
    "events the live streams send, for a run too long to read at once.",
    response_model=EventPage,
    responses=error_responses(404, 422),
)
async def execution_event_page(
    app: App, execution_id: ResourceId, after: Seq = 0, limit: Limit = 100
) -> JSON:
    events = await app.event_page(execution_id, after, limit + 1)
    more = len(events) > limit
    page = events[:limit]
    return JSON(
        {"events": [event_json(e) for e in page], "next_after": page[-1].seq if more else None}
    )


@router.delete(
    "/executions/{execution_id}",
    status_code=204,
    summary="Delete a finished execution",
    description="Deletes the run with its node states and logs. 409 for a run that has not "
    "finished (cancel it first). Finished runs are also deleted by retention "
    "(DUCTWORK_RETENTION_DAYS / _RUNS, a workflow's `settings.retention`).",
    responses=error_responses(404, 409, 422),
)
async def delete_execution(app: App, execution_id: ResourceId) -> Response:
    await app.delete_run(execution_id)
    return Response(status_code=204)


@router.post(
    "/executions/{execution_id}/cancel",
    summary="Cancel an execution",
    response_model=RunView,
    responses=error_responses(404, 422),
)
async def cancel_execution(app: App, execution_id: ResourceId) -> JSON:
    run = await app.cancel(execution_id)
    return JSON(run_view(run))


@router.post(
    "/executions/{execution_id}/retry",
    summary="Retry a failed execution from its failed nodes",
    dependencies=[ExecuteRateLimit],
    status_code=202,
    response_model=RunView,
    responses=error_responses(404, 409, 422, 429),
)
async def retry_execution(
    app: App, execution_id: ResourceId, body: RetryRequest | None = None
) -> JSON:
    options = body or RetryRequest()
    run = await app.retry(execution_id, use_current_definition=options.use_current_definition)
    return JSON(status_code=202, content=run_view(run))


@router.get(
    "/{workflow_id}",
    summary="Get a workflow",
    response_model=Workflow,
    responses=error_responses(404, 422),
)
async def get_workflow(app: App, workflow_id: ResourceId) -> JSON:
    return JSON((await app.get_workflow(workflow_id)).public())


@router.put(
    "/{workflow_id}",
    summary="Replace a workflow (new version)",
    response_model=Workflow,
    responses=error_responses(404, 422),
)
async def update_workflow(app: App, workflow_id: ResourceId, definition: WorkflowBody) -> JSON:
    return JSON((await app.update_workflow(workflow_id, definition)).public())


@router.delete(
    "/{workflow_id}",
    status_code=204,
    summary="Delete a workflow (its runs stay)",
    responses=error_responses(404, 422),
)
async def delete_workflow(app: App, workflow_id: ResourceId) -> Response:
    await app.delete_workflow(workflow_id)
    return Response(status_code=204)


@router.post(
    "/{workflow_id}/execute",
    summary="Execute a workflow",
    dependencies=[ExecuteRateLimit],
    description="200 with the run as it stands when it finished or the wait ended (or an "
    "Idempotency-Key found an existing run); 202 when `async_execution` queued a new run.",
    response_model=ExecuteView,
    responses={
        202: {"model": ExecuteView, "description": "Queued: poll or stream the execution."},
        **error_responses(404, 422, 429),
    },
)
async def execute_workflow(
    app: App,
    workflow_id: ResourceId,
    body: Annotated[
        ExecuteRequest | None,
        Body(
            openapi_examples={
                "seed": {"value": {"inputs": {"user_name": "John"}, "async_execution": False}}
            }
        ),
    ] = None,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> JSON:
    request = body or ExecuteRequest()
    # The caller's key lives in its own namespace, so it can never pass for a key the
    # service makes itself (`schedule:`, `error:`, `hook:`), which the scheduler trusts.
    stored_key = None if idempotency_key is None else CALLER_KEY_PREFIX + idempotency_key
    check_size(request.inputs, "inputs", app.settings.max_inputs_bytes, "DUCTWORK_MAX_INPUTS_BYTES")
    run, created = await app.execute(
        workflow_id,
        request.inputs,
        wait=not request.async_execution,
        idempotency_key=stored_key,
        wait_seconds=request.wait_seconds,
        with_events=False,  # the reply shows node states and result, not logs
        trigger={"type": "manual"},
    )
    status = 202 if request.async_execution and created else 200
    return JSON(status_code=status, content=execute_view(run, created=created))


@router.get(
    "/{workflow_id}/executions",
    summary="List a workflow's executions",
    description="Newest first, with their logs; filtered by `status` and `trigger` like "
    "`GET /workflows/executions`, paged like it (`after`, `X-Next-Cursor`). 404 for an "
    "id that is neither a workflow nor has runs.",
    response_model=list[RunView],
    responses={200: {"headers": NEXT_PAGE_HEADERS}, **error_responses(404, 422)},
)
async def list_executions(
    app: App,
    request: Request,
    workflow_id: ResourceId,
    status: StatusFilter = None,
    trigger: TriggerFilter = None,
    limit: Limit = 100,
    offset: Offset = 0,
    after: After = None,
) -> JSON:
    cursor = run_cursor(after, offset)
    query = run_query(status, trigger)
    runs = await app.list_runs(workflow_id, query, limit=limit + 1, offset=offset, after=cursor)
    return run_page(request, runs, limit, run_view)
