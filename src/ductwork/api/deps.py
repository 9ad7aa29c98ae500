"""Request-scoped access to the application object and the request's principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from ductwork.security.models import Principal
from ductwork.service import Ductwork


def _app(request: Request) -> Ductwork:
    app: Ductwork = request.app.state.ductwork
    return app


def _principal(connection: HTTPConnection) -> Principal:
    """Set by `ductwork.api.guard.AuthGuard` on every request it lets through."""
    principal: Principal = connection.state.principal
    return principal


App = Annotated[Ductwork, Depends(_app)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
