"""Who the current request acts as and where it came from, for the audit log.

The API's guard sets it once per request (`ductwork.api.guard`); the CLI sets
`SYSTEM`. Service code reads it instead of threading a caller through every call.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from ductwork.security.models import SYSTEM, Principal


@dataclass(frozen=True, slots=True)
class RequestContext:
    principal: Principal
    client: str | None = None
    """The client's address (`request.client.host`), when known."""


_current: ContextVar[RequestContext | None] = ContextVar("ductwork_request", default=None)


def current() -> RequestContext:
    """The current request's context; the system's own outside any request."""
    return _current.get() or RequestContext(SYSTEM)


def set_current(context: RequestContext) -> None:
    """Set for the rest of this task (the guard calls it per request)."""
    _current.set(context)
