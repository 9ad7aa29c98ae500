"""The FastAPI application: thin routes over `ductwork.service`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import ductwork
from ductwork.api import errors, generate, live, schemas, system, workflows
from ductwork.api.responses import JSON
from ductwork.service import Ductwork


def create_app(application: Ductwork | None = None) -> FastAPI:
    """An ASGI app serving `application` (built from the environment when omitted)."""
    if application is None:
        from ductwork.runtime import build
        from ductwork.settings import Settings

        settings = Settings()
        role = settings.serve_role
        if role == "auto":
            role = "api" if settings.redis_url else "embedded"
        application = build(settings, role=role)
    app_obj: Ductwork = application

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        await app_obj.start()
        if app_obj.settings.load_examples:
            from ductwork.examples import load_examples

            await load_examples(app_obj)
        try:
            yield
        finally:
            await app_obj.close()

    api = FastAPI(
        title="ductwork",
        version=ductwork.__version__,
        description="A workflow execution engine for AI workflows.",
        default_response_class=JSON,
        lifespan=lifespan,
    )
    api.state.ductwork = app_obj
    errors.install(api)
    api.include_router(workflows.router)
    api.include_router(system.router)
    api.include_router(generate.router)
    api.include_router(live.router)
    schemas.install_openapi(api)  # after every router: it documents them all
    return api
