"""Request-scoped access to the application object."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ductwork.service import Ductwork


def _app(request: Request) -> Ductwork:
    app: Ductwork = request.app.state.ductwork
    return app


App = Annotated[Ductwork, Depends(_app)]
