"""`GET /audit`: the audit log, newest first, for admins (Permission.AUDIT in the guard).

Read-only by design: the log is append-only, so there is no route that updates or
deletes an entry (a test asserts it). Entries are written by the service layer
(`ductwork.security.audit.AuditLog.record`), never through the API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ductwork.api.deps import App
from ductwork.api.limits import MAX_ID_LENGTH, RequestRejected
from ductwork.api.schemas import error_responses
from ductwork.security.audit import AUDIT_ID_PATTERN, MAX_PAGE
from ductwork.security.models import AuditEntry, AuditQuery

router = APIRouter(tags=["audit"])

# No control characters (PostgreSQL refuses NUL in a text parameter).
_TEXT = r"^[^\x00-\x1f\x7f]+$"


class AuditPage(BaseModel):
    """One page of the audit log, newest first."""

    entries: list[AuditEntry]
    next_before: str | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page."
    )


def _utc(value: datetime | None) -> datetime | None:
    """`value` in UTC (no offset: read as UTC, as entries are stored)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:00-05:00 is past the last datetime in UTC: clamp, the filter
        # means the same (nothing is that late, or that early).
        edge = datetime.max if value.year > 1 else datetime.min
        return edge.replace(tzinfo=UTC)


@router.get(
    "/audit",
    summary="Read the audit log (admins)",
    description="Who did what, to what, when and from where: workflow and run actions, "
    "API keys, credentials, logins and user changes. Newest first; page with "
    "`before=<next_before>`. Entries never hold secret values.",
    response_model=AuditPage,
    responses=error_responses(401, 403, 422),
)
async def list_audit(
    app: App,
    actor: Annotated[
        str | None,
        Query(
            max_length=255,
            pattern=_TEXT,
            description="`user:<id>`, `key:<id>`, `admin-key`, `anonymous` or `system`.",
        ),
    ] = None,
    action: Annotated[
        str | None,
        Query(
            max_length=64,
            pattern=_TEXT,
            description="Exact (`run.cancel`) or a prefix ending in `.` (`workflow.`).",
        ),
    ] = None,
    target: Annotated[
        str | None,
        Query(
            max_length=MAX_ID_LENGTH + 32,
            pattern=_TEXT,
            description="e.g. `workflow:<id>`, `execution:<id>`, `key:<id>`.",
        ),
    ] = None,
    since: Annotated[
        datetime | None, Query(description="ISO 8601; entries at or after (UTC if no offset).")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="ISO 8601; entries at or before (UTC if no offset).")
    ] = None,
    before: Annotated[
        str | None,
        Query(pattern=AUDIT_ID_PATTERN, description="An entry id: only older entries."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")] = 100,
) -> AuditPage:
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since > until:
        raise RequestRejected("must not be later than until", field="since")
    query = AuditQuery(
        actor=actor,
        action=action,
        target=target,
        since=since,
        until=until,
        before=before,
        limit=limit,
    )
    entries, next_before = await app.audit.page(query)
    return AuditPage(entries=entries, next_before=next_before)
