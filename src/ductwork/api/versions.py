"""Workflow version routes: list, read, diff and restore saved versions.

Every save of a workflow keeps its definition as a version; a restore saves an
old one again as a new version (validated like a PUT), so history only grows.
`/versions/diff` is declared before `/versions/{version}` so it is not captured.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from ductwork.api.deps import App
from ductwork.api.limits import CheckedJSONRoute, Limit, Offset, ResourceId
from ductwork.api.responses import JSON
from ductwork.api.schemas import Workflow, error_responses
from ductwork.versions import WorkflowVersionInfo

router = APIRouter(prefix="/workflows", tags=["versions"], route_class=CheckedJSONRoute)

MAX_VERSION: Final = 2_147_483_647
"""Versions are 32-bit integers in the SQL stores."""

VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION, description="A version number.")]


class VersionListItem(BaseModel):
    """One saved version of a workflow, without its definition."""

    version: int = Field(examples=[3])
    created_at: datetime = Field(description="When this version was saved.")
    name: str = Field(description="The workflow's name in this version.")
    node_count: int
    edge_count: int


class ValueChange(BaseModel):
    """One value that differs between the two versions (null where a key is absent)."""

    model_config = ConfigDict(populate_by_name=True)

    path: str = Field(description="Dotted path, e.g. `config.prompt` inside a node.")
    from_: Any = Field(alias="from", description="The value in the older version.")
    to: Any = Field(description="The value in the newer version.")


class NodeChangeView(BaseModel):
    id: str
    changes: list[ValueChange]


class NodeDiff(BaseModel):
    added: list[str] = Field(description="Ids of nodes only `to` has.")
    removed: list[str] = Field(description="Ids of nodes only `from` has.")
    changed: list[NodeChangeView]


class EdgeView(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    branch: str | None = None


class EdgeDiff(BaseModel):
    added: list[EdgeView]
    removed: list[EdgeView]


class VersionDiff(BaseModel):
    """What changed from version `from` to version `to`."""

    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    nodes: NodeDiff
    edges: EdgeDiff
    workflow: list[ValueChange] = Field(
        description="The workflow's other fields: name, variables, settings, triggers..."
    )


DIFF_EXAMPLE: Final[dict[str, Any]] = {
    "from": 1,
    "to": 3,
    "nodes": {
        "added": ["email1"],
        "removed": [],
        "changed": [
            {"id": "ai1", "changes": [{"path": "config.prompt", "from": "Hi", "to": "Hello"}]}
        ],
    },
    "edges": {"added": [{"from": "ai1", "to": "email1", "branch": None}], "removed": []},
    "workflow": [{"path": "name", "from": "Greeter", "to": "Greeter v2"}],
}


def version_item(info: WorkflowVersionInfo) -> dict[str, Any]:
    """The JSON shape of one version (`VersionListItem`)."""
    return {
        "version": info.version,
        "created_at": info.created_at.isoformat(),
        "name": info.name,
        "node_count": info.node_count,
        "edge_count": info.edge_count,
    }


@router.get(
    "/{workflow_id}/versions",
    summary="List a workflow's versions",
    description="Newest first, paged; each without its definition (read one version for it).",
    response_model=list[VersionListItem],
    responses=error_responses(404, 422),
)
async def list_versions(
    app: App, workflow_id: ResourceId, limit: Limit = 100, offset: Offset = 0
) -> JSON:
    versions = await app.list_versions(workflow_id, limit=limit, offset=offset)
    return JSON([version_item(info) for info in versions])


@router.get(
    "/{workflow_id}/versions/diff",
    summary="Compare two versions of a workflow",
    description="Nodes by id (added, removed, changed with per-field paths), edges by "
    "(from, to, branch), and the workflow's other fields by path. `from` may be newer "
    "than `to`: the diff then reads backwards.",
    response_model=VersionDiff,
    responses={
        200: {"content": {"application/json": {"example": DIFF_EXAMPLE}}},
        **error_responses(404, 422),
    },
)
async def diff_versions(
    app: App,
    workflow_id: ResourceId,
    from_: Annotated[
        int, Query(alias="from", ge=1, le=MAX_VERSION, description="The older version.")
    ],
    to: Annotated[int, Query(ge=1, le=MAX_VERSION, description="The newer version.")],
) -> JSON:
    return JSON(await app.diff_versions(workflow_id, from_, to))


@router.get(
    "/{workflow_id}/versions/{version}",
    summary="Get one version of a workflow",
    description="The workflow as saved in that version (`updated_at`: when it was saved).",
    response_model=Workflow,
    responses=error_responses(404, 422),
)
async def get_version(app: App, workflow_id: ResourceId, version: VersionNumber) -> JSON:
    return JSON((await app.get_version(workflow_id, version)).public())


@router.post(
    "/{workflow_id}/versions/{version}/restore",
    summary="Restore a version (as a new version)",
    description="Saves that version's definition again as the workflow's newest version, "
    "validated as a PUT would be: 422 when it no longer passes today's checks (a node "
    "type or credential that is gone, a webhook path another workflow took).",
    response_model=Workflow,
    responses=error_responses(404, 422),
)
async def restore_version(app: App, workflow_id: ResourceId, version: VersionNumber) -> JSON:
    return JSON((await app.restore_version(workflow_id, version)).public())
