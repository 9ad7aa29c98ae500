"""Credential routes: create, replace, delete and list named credentials; their types' schemas.

Data goes in (POST, PUT) and never comes out: every answer is metadata only.
Permissions (`ductwork.api.guard.ROUTE_PERMISSIONS`): reads need
`credentials:read`, writes `credentials:write`, `/credential-types` `read`.
"""

from __future__ import annotations

import copy
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ductwork.api.deps import App
from ductwork.api.errors import problem
from ductwork.api.limits import CheckedJSONRoute, Limit, Offset
from ductwork.api.responses import JSON
from ductwork.api.schemas import ErrorDetail, error_responses
from ductwork.security.credential_types import CREDENTIAL_TYPES
from ductwork.security.credentials import (
    NAME_PATTERN,
    CredentialExists,
    CredentialInfo,
    CredentialInUse,
    CredentialInvalid,
    CredentialNotFound,
    CredentialService,
)
from ductwork.service import Ductwork

router = APIRouter(tags=["credentials"], route_class=CheckedJSONRoute)

CredentialName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="A credential's name (an identifier: templates read it as secrets.NAME).",
    ),
]

_TYPES_HELP = "One of: " + ", ".join(
    f"`{name}` ({model.description})" for name, model in CREDENTIAL_TYPES.items()
)


class CredentialCreate(BaseModel):
    """`POST /credentials`: data is validated against the type's schema (GET /credential-types)."""

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=100,
        description="Unique; an identifier so templates read it as `{{ secrets.NAME }}`.",
        examples=["github_token"],
    )
    type: str = Field(max_length=100, description=_TYPES_HELP, examples=["bearer"])
    data: dict[str, Any] = Field(
        description="The credential's fields; write-only: never returned.",
        examples=[{"token": "ghp_..."}],
    )


class CredentialReplace(BaseModel):
    """`PUT /credentials/{name}`: a new type and data, replacing the old entirely."""

    type: str = Field(max_length=100, description=_TYPES_HELP)
    data: dict[str, Any] = Field(description="The credential's fields; write-only.")


class CredentialList(BaseModel):
    items: list[CredentialInfo]
    limit: int
    offset: int


class WorkflowUsing(BaseModel):
    id: str
    name: str


class CredentialInUseBody(BaseModel):
    """409 of `DELETE /credentials/{name}`: the workflows that still refer to it."""

    detail: str
    workflows: list[WorkflowUsing]


class CredentialType(BaseModel):
    name: str
    description: str
    secret_fields: list[str]
    json_schema: dict[str, Any] = Field(
        description="JSON Schema of `data`; secret fields are `writeOnly` with format `password`."
    )


def _service(app: Ductwork) -> CredentialService:
    if not isinstance(app.credentials, CredentialService):
        # Only bare test setups build an app without the service.
        raise RuntimeError("this application was built without a credential service")
    return app.credentials


async def _audit(app: Ductwork, action: str, name: str) -> None:
    # Never `data`: the audit log holds who did what to which credential, not values.
    audit = getattr(app, "audit", None)
    if audit is not None:
        await audit.record(action, target=f"credential:{name}")


@router.post(
    "/credentials",
    status_code=201,
    summary="Create a credential (its data is never shown again)",
    response_model=CredentialInfo,
    responses=error_responses(401, 403, 409, 413, 415, 422),
)
async def create_credential(app: App, body: CredentialCreate) -> JSON:
    info = await _service(app).create(body.name, body.type, body.data)
    await _audit(app, "credential.create", info.name)
    return JSON(status_code=201, content=info.model_dump(mode="json"))


@router.get(
    "/credentials",
    summary="List credentials (metadata only)",
    response_model=CredentialList,
    responses=error_responses(401, 403, 422),
)
async def list_credentials(app: App, limit: Limit = 100, offset: Offset = 0) -> JSON:
    items = await _service(app).list_credentials(limit=limit, offset=offset)
    return JSON(
        content=CredentialList(items=items, limit=limit, offset=offset).model_dump(mode="json")
    )


@router.get(
    "/credentials/{name}",
    summary="A credential's metadata (never its data)",
    response_model=CredentialInfo,
    responses=error_responses(401, 403, 404, 422),
)
async def get_credential(app: App, name: CredentialName) -> JSON:
    info = await _service(app).get(name)
    return JSON(content=info.model_dump(mode="json"))


@router.put(
    "/credentials/{name}",
    summary="Replace a credential's type and data",
    response_model=CredentialInfo,
    responses=error_responses(401, 403, 404, 413, 415, 422),
)
async def replace_credential(app: App, name: CredentialName, body: CredentialReplace) -> JSON:
    info = await _service(app).replace(name, body.type, body.data)
    await _audit(app, "credential.update", name)
    return JSON(content=info.model_dump(mode="json"))


@router.delete(
    "/credentials/{name}",
    status_code=204,
    summary="Delete a credential (409 while saved workflows refer to it, unless force=true)",
    response_class=Response,
    responses={
        **error_responses(401, 403, 404, 422),
        409: {"model": CredentialInUseBody, "description": "Saved workflows refer to it"},
    },
)
async def delete_credential(
    app: App,
    name: CredentialName,
    force: Annotated[
        bool, Query(description="Delete even while workflows refer to it (their runs fail).")
    ] = False,
) -> Response:
    await _service(app).delete(name, force=force)
    await _audit(app, "credential.delete", name)
    return Response(status_code=204)


def _type_schema(name: str) -> CredentialType:
    model = CREDENTIAL_TYPES[name]
    schema = copy.deepcopy(model.model_json_schema())
    for field in model.secret_fields:
        prop = schema.get("properties", {}).get(field)
        if prop is not None:
            prop["writeOnly"] = True
            prop["format"] = "password"
            # `password: str | None` is an anyOf; mark the string branch too.
            for branch in prop.get("anyOf", []):
                if branch.get("type") == "string":
                    branch["writeOnly"] = True
                    branch["format"] = "password"
    return CredentialType(
        name=name,
        description=model.description,
        secret_fields=list(model.secret_fields),
        json_schema=schema,
    )


@router.get(
    "/credential-types",
    summary="The credential types and the JSON Schema of each one's data",
    response_model=list[CredentialType],
    responses=error_responses(401, 403),
)
async def credential_types() -> JSON:
    return JSON(content=[_type_schema(name).model_dump(mode="json") for name in CREDENTIAL_TYPES])


def install(api: FastAPI) -> None:
    """Register the handlers of the credential errors (422, 404, 409)."""

    @api.exception_handler(CredentialInvalid)
    async def invalid(_: Request, exc: CredentialInvalid) -> JSON:
        return problem("credential is invalid", exc.issues)

    @api.exception_handler(CredentialNotFound)
    async def not_found(_: Request, exc: CredentialNotFound) -> JSON:
        return JSON(status_code=404, content=ErrorDetail(detail=str(exc)).model_dump())

    @api.exception_handler(CredentialExists)
    async def exists(_: Request, exc: CredentialExists) -> JSON:
        return JSON(status_code=409, content=ErrorDetail(detail=str(exc)).model_dump())

    @api.exception_handler(CredentialInUse)
    async def in_use(_: Request, exc: CredentialInUse) -> JSON:
        body = CredentialInUseBody(
            detail=str(exc),
            workflows=[WorkflowUsing(id=w.id, name=w.name) for w in exc.workflows],
        )
        return JSON(status_code=409, content=body.model_dump())
