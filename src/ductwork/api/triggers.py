"""Schedule routes: a workflow's next fire times, and pausing or resuming its triggers."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ductwork.api.deps import App
from ductwork.api.limits import CheckedJSONRoute, ResourceId
from ductwork.api.responses import JSON
from ductwork.api.schemas import Workflow, error_responses
from ductwork.triggers.schedule import format_slot
from ductwork.triggers.scheduler import ScheduleStatus

router = APIRouter(prefix="/workflows", tags=["triggers"], route_class=CheckedJSONRoute)


class FireTime(BaseModel):
    """One time a schedule fires, in UTC and in the schedule's time zone."""

    utc: datetime = Field(examples=["2025-03-30T01:00:00Z"])
    local: datetime = Field(
        description="The same instant in the schedule's `timezone`.",
        examples=["2025-03-30T03:00:00+02:00"],
    )


class ScheduleView(BaseModel):
    """One schedule trigger of a workflow, as `GET /workflows/{id}/schedule` shows it."""

    index: int = Field(description="Its position in the workflow's `triggers`.")
    key: str = Field(
        description="Its slot-key prefix: the trigger's `id`, else a digest of its timing. "
        "Runs it starts carry `trigger: {type: schedule, key, slot}`."
    )
    spec: dict[str, Any] = Field(description="The trigger as saved, with defaults filled in.")
    timezone: str
    paused: bool = Field(description="The workflow is paused: these times fire once resumed.")
    last_slot: datetime | None = Field(
        description="The last slot that started a run (UTC), or null when none has."
    )
    next: list[FireTime] = Field(
        description="The next five slots (fewer when `end_at` comes first)."
    )


def schedule_view(status: ScheduleStatus) -> dict[str, Any]:
    """The JSON shape of one schedule (`ScheduleView`)."""
    zone = status.spec.zone()
    return {
        "index": status.index,
        "key": status.key,
        "spec": status.spec.model_dump(mode="json"),
        "timezone": status.spec.timezone,
        "paused": status.paused,
        "last_slot": None if status.last_slot is None else format_slot(status.last_slot),
        "next": [
            {"utc": format_slot(slot), "local": slot.astimezone(zone).isoformat()}
            for slot in status.next_slots
        ],
    }


@router.get(
    "/{workflow_id}/schedule",
    summary="A workflow's schedules and their next fire times",
    description="One entry per schedule trigger (none for a workflow without schedules): "
    "the last slot that started a run and the next five.",
    response_model=list[ScheduleView],
    responses=error_responses(404, 422),
)
async def get_schedule(app: App, workflow_id: ResourceId) -> JSON:
    return JSON([schedule_view(status) for status in await app.schedules(workflow_id)])


@router.post(
    "/{workflow_id}/pause",
    summary="Pause a workflow's triggers",
    description="Sets `status: paused` (a new version): its schedules and webhooks stop, "
    "manual runs still start. Slots that pass while paused are not caught up. Pausing a "
    "paused workflow changes nothing.",
    response_model=Workflow,
    responses=error_responses(404, 422),
)
async def pause_workflow(app: App, workflow_id: ResourceId) -> JSON:
    return JSON((await app.set_paused(workflow_id, True)).public())


@router.post(
    "/{workflow_id}/resume",
    summary="Resume a paused workflow's triggers",
    description="Sets `status: active` (a new version): schedules fire from the next slot "
    "on, webhooks answer again. Resuming an active workflow changes nothing.",
    response_model=Workflow,
    responses=error_responses(404, 422),
)
async def resume_workflow(app: App, workflow_id: ResourceId) -> JSON:
    return JSON((await app.set_paused(workflow_id, False)).public())
