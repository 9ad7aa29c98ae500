"""`POST /ai/workflows/generate`: a workflow from a natural-language request.

Answers 200 with the generated (always valid) workflow, or 201 with a
`Location` header when `save` stored it. Generation failures are answered
here rather than by app-wide exception handlers (an APIRouter cannot carry
its own): 422 when the model produced no valid workflow within the allowed
rounds (`{message, detail: [issues], rounds}`), 503 when no LLM is
configured, 502 when the provider failed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field, StringConstraints

from ductwork.api.deps import App
from ductwork.api.limits import CheckedJSONRoute, ExecuteRateLimit
from ductwork.api.responses import JSON
from ductwork.api.schemas import ErrorMessage, GenerateResult, GenerationProblem, error_responses
from ductwork.generation import (
    GenerationFailed,
    LLMNotConfigured,
    LLMUpstreamError,
    generate_workflow,
)

router = APIRouter(prefix="/ai/workflows", tags=["ai"], route_class=CheckedJSONRoute)


class GenerateRequest(BaseModel):
    """What to build, and whether to store it."""

    prompt: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
    ] = Field(description="What the workflow should do, in plain words.")
    save: bool = Field(
        default=False, description="Store the workflow too (answer 201 with its id)."
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Model id at the provider; defaults to DUCTWORK_LLM_DEFAULT_MODEL.",
    )


_EXAMPLE_BODY = {
    "prompt": "When a user signs up, have the AI write a short welcome and email it to them.",
    "save": False,
}

_ISSUE = {"node_id": "a", "field": "edges", "message": "cycle: a -> b -> a"}

_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {
        "model": GenerateResult,
        "description": "The generated workflow, stored under `workflow_id`.",
        "headers": {
            "Location": {"description": "The stored workflow's URL.", "schema": {"type": "string"}}
        },
    },
    422: {
        "model": GenerationProblem,
        "description": "Empty or oversized prompt, or no valid workflow within the rounds.",
        "content": {
            "application/json": {
                "example": {
                    "message": "no valid workflow after 3 rounds; 1 problem remains",
                    "detail": [_ISSUE],
                    "rounds": 3,
                }
            }
        },
    },
    502: {"model": ErrorMessage, "description": "The LLM provider failed or refused the request."},
    503: {"model": ErrorMessage, "description": "No LLM is configured (DUCTWORK_LLM_API_KEY)."},
    **error_responses(429),
}


@router.post(
    "/generate",
    summary="Generate a workflow from a natural-language prompt",
    response_model=GenerateResult,
    response_description="The generated workflow (not stored).",
    responses=_RESPONSES,
    dependencies=[ExecuteRateLimit],
)
async def generate(
    app: App,
    body: Annotated[GenerateRequest, Body(openapi_examples={"welcome": {"value": _EXAMPLE_BODY}})],
) -> JSON:
    """Ask the configured LLM for a workflow, repairing its answer until it validates."""
    try:
        result = await generate_workflow(app, body.prompt, save=body.save, model=body.model)
    except GenerationFailed as exc:
        problem: dict[str, Any] = {
            "message": str(exc),
            "detail": [issue.model_dump() for issue in exc.issues],
            "rounds": exc.rounds,
        }
        if exc.draft is not None:
            problem["workflow"] = exc.draft.dump()
        return JSON(status_code=422, content=problem)
    except LLMNotConfigured as exc:
        return JSON(status_code=503, content={"message": str(exc)})
    except LLMUpstreamError as exc:
        return JSON(status_code=502, content={"message": str(exc)})
    content: dict[str, Any] = {
        "workflow": result.definition.dump(),
        "rounds": result.rounds,
        "saved": result.workflow is not None,
        "model": result.model,
        "cached": result.cached,
    }
    if result.workflow is None:
        return JSON(content)
    content["workflow_id"] = result.workflow.id
    return JSON(
        status_code=201,
        content=content,
        headers={"Location": f"/workflows/{result.workflow.id}"},
    )
