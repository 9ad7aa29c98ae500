"""Error bodies every route documents, so the OpenAPI document matches what is sent.

`Problem` is the 422 body (`ductwork.api.errors`): which node, which field, why.
`ErrorDetail` is every other error body: 401, 403, 404, 409, 413, 415, 429.
Routes declare them with `responses=error_responses(404, 422)`.
"""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict


class ProblemDetail(BaseModel):
    """One reason a request was refused: the node and field it concerns, and why."""

    model_config = ConfigDict(title="ProblemDetail")

    node_id: str | None = None
    field: str | None = None
    message: str


class Problem(BaseModel):
    """The 422 body: a summary and every problem found."""

    model_config = ConfigDict(title="Problem")

    message: str
    detail: list[ProblemDetail]


class ErrorDetail(BaseModel):
    """The body of every error except 422: one sentence saying what went wrong."""

    model_config = ConfigDict(title="ErrorDetail")

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
