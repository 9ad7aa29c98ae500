"""Request-scoped access to the application object and the request's principal.

Both are `async def`: FastAPI runs a plain `def` dependency on its thread pool, and
that hop cost every request about a millisecond here (bench/hooks.py: a refused
webhook call took 2.0 ms in-process, 0.6 ms with these async).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from ductwork.security.models import Principal
from ductwork.service import Ductwork


async def _app(request: Request) -> Ductwork:
    app: Ductwork = request.app.state.ductwork
    return app


async def _principal(connection: HTTPConnection) -> Principal:
    """Set by `ductwork.api.guard.AuthGuard` on every request it lets through."""
    principal: Principal = connection.state.principal
    return principal


App = Annotated[Ductwork, Depends(_app)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
