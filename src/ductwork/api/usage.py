"""`GET /workflows/{id}/usage`: a workflow's token usage and cost per UTC day (issue 11).

Each run's own usage is in its execution (`usage`, `cost`); docs/costs.md says how
usage is counted and how budgets use it.
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ductwork.api.deps import App
from ductwork.api.limits import CheckedJSONRoute, ResourceId
from ductwork.api.responses import JSON
from ductwork.api.schemas import error_responses

router = APIRouter(prefix="/workflows", tags=["workflows"], route_class=CheckedJSONRoute)

MAX_USAGE_DAYS: Final = 366


class UsageTotals(BaseModel):
    """Runs created in a span of time, with their tokens and cost summed."""

    runs: int = Field(examples=[12])
    prompt_tokens: int = Field(examples=[48_200])
    completion_tokens: int = Field(examples=[9_310])
    total_tokens: int = Field(examples=[57_510])
    cost: float = Field(
        examples=[0.0412],
        description="US dollars: providers' reported costs, else DUCTWORK_LLM_PRICES; calls "
        "to unpriced models count as 0.",
    )


class UsageDay(UsageTotals):
    """One UTC day with runs (days without runs are left out)."""

    date: str = Field(examples=["2026-12-03"], description="The UTC day (YYYY-MM-DD).")


class WorkflowUsage(BaseModel):
    """`GET /workflows/{id}/usage`."""

    workflow_id: str
    since: str = Field(
        examples=["2026-11-04T00:00:00+00:00"],
        description="00:00 UTC of the first day counted: runs created since then are in.",
    )
    total: UsageTotals
    days: list[UsageDay] = Field(description="Oldest day first.")


Days = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_USAGE_DAYS,
        description="How many UTC days to sum, today included (1: today only).",
    ),
]


@router.get(
    "/{workflow_id}/usage",
    summary="A workflow's token usage and cost per day",
    description="Tokens and cost of the workflow's runs created in the last `days` UTC "
    "days (today included), per day and in total, by each run's creation day. 404 for "
    "an id that is neither a workflow nor has runs.",
    response_model=WorkflowUsage,
    responses=error_responses(404, 422),
)
async def workflow_usage(app: App, workflow_id: ResourceId, days: Days = 30) -> JSON:
    return JSON(await app.workflow_usage(workflow_id, days))
