"""Every failure becomes a precise 4xx: which node, which field, why. Never a 500 for bad input."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError

from ductwork.api.limits import RequestRejected, UnsupportedMediaType
from ductwork.api.responses import JSON
from ductwork.engine.graph import WorkflowInvalid
from ductwork.models import ValidationIssue
from ductwork.service import Conflict, NotFound


def _node_id_at(body: Any, loc: tuple[Any, ...]) -> str | None:
    if len(loc) >= 3 and loc[0] == "body" and loc[1] == "nodes" and isinstance(loc[2], int):
        try:
            node = body["nodes"][loc[2]]
            return str(node.get("id")) if isinstance(node, dict) and node.get("id") else None
        except (KeyError, IndexError, TypeError):
            return None
    return None


def problem(message: str, issues: Iterable[ValidationIssue]) -> JSON:
    """The 422 answer (`schemas.Problem`): what was invalid, one entry per problem."""
    return JSON(
        status_code=422,
        content={"message": message, "detail": [issue.model_dump() for issue in issues]},
    )


def install(app: FastAPI) -> None:
    """Register the exception handlers on an app."""

    @app.exception_handler(WorkflowInvalid)
    async def invalid_workflow(_: Request, exc: WorkflowInvalid) -> JSON:
        return problem("workflow is invalid", exc.issues)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSON:
        issues = []
        for error in exc.errors():
            loc = tuple(error.get("loc", ()))
            field = ".".join(str(part) for part in loc[1:] if part != "body") or None
            issues.append(
                {
                    "node_id": _node_id_at(exc.body, loc),
                    "field": field,
                    "message": str(error.get("msg", "invalid")),
                }
            )
        return JSON(status_code=422, content={"message": "request is invalid", "detail": issues})

    @app.exception_handler(RequestRejected)
    async def rejected_request(_: Request, exc: RequestRejected) -> JSON:
        return JSON(
            status_code=422, content={"message": "request is invalid", "detail": [exc.issue()]}
        )

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSON:
        return JSON(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSON:
        return JSON(status_code=409, content={"detail": str(exc)})

    @app.exception_handler(UnsupportedMediaType)
    async def unsupported_media_type(_: Request, exc: UnsupportedMediaType) -> JSON:
        return JSON(status_code=415, content={"detail": exc.detail})
