"""The FastAPI application: thin routes over `ductwork.service`."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

import ductwork
from ductwork import startup
from ductwork.api import (
    audit,
    auth,
    credentials,
    errors,
    generate,
    hooks,
    live,
    resume,
    schemas,
    system,
    triggers,
    ui,
    usage,
    versions,
    workflows,
)
from ductwork.api.bodysize import BodySizeLimit
from ductwork.api.guard import AuthGuard, is_public
from ductwork.api.hosts import AllowedHosts, allowed_hosts, is_loopback
from ductwork.api.hot import HotRoutes
from ductwork.api.responses import JSON
from ductwork.service import Ductwork
from ductwork.settings import Settings

log = logging.getLogger("ductwork.api")


class UnsafeSettings(ValueError):
    """Settings that would expose the server (e.g. DUCTWORK_AUTH=disabled off loopback)."""


def check_exposure(settings: Settings) -> None:
    """Refuse DUCTWORK_AUTH=disabled unless bound to loopback; warn about open choices."""
    if settings.auth == "disabled":
        if not is_loopback(settings.host):
            raise UnsafeSettings(
                f"DUCTWORK_AUTH=disabled is only allowed on a loopback address, and "
                f"DUCTWORK_HOST is {settings.host!r}: bind to 127.0.0.1 or enable auth"
            )
        log.warning(
            "DUCTWORK_AUTH=disabled: every request acts as an admin, without credentials "
            "(development only)"
        )
    if allowed_hosts(settings) == ["*"]:
        log.warning(
            "DUCTWORK_ALLOWED_HOSTS is not set and the server is not bound to loopback: any "
            "Host header is accepted; set it to the names clients use"
        )


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
    check_exposure(app_obj.settings)

    @asynccontextmanager
    async def lifespan(api: FastAPI) -> AsyncIterator[None]:
        try:
            await app_obj.start()
            if app_obj.settings.load_examples:
                from ductwork.examples import load_examples

                await load_examples(app_obj)
        finally:
            # Started (or failed to): `ductwork serve` held garbage collection until now.
            startup.release()
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
    api.state.store_probe = system.StoreProbe(app_obj)
    errors.install(api)
    # Counts every body byte the app reads, whatever middleware sits around it.
    api.add_middleware(BodySizeLimit, max_bytes=app_obj.settings.max_request_bytes)
    api.include_router(workflows.router)
    api.include_router(usage.router)
    api.include_router(triggers.router)
    api.include_router(versions.router)
    api.include_router(system.router)
    api.include_router(generate.router)
    api.include_router(live.router)
    resume.install(api)
    credentials.install(api)
    api.include_router(credentials.router)
    api.include_router(audit.router)
    api.include_router(auth.router)
    api.include_router(hooks.router)
    auth.install(api)
    ui.install(api, app_obj.settings)  # the web app's shell (left out of the document)
    schemas.install_openapi(api, is_public)  # after every router: it documents them all
    # Added innermost first: the host check runs first, then CORS (so preflights and
    # refusals carry CORS headers), then authentication, then the routes.
    api.add_middleware(AuthGuard, ductwork=app_obj, routes=api.router.routes)
    settings = app_obj.settings
    if settings.cors_origins:
        api.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "X-CSRF-Token",
                "Idempotency-Key",
                "Last-Event-ID",
            ],
            expose_headers=["Location", "Retry-After", "X-Next-Cursor", "Link"],
        )
    api.add_middleware(AllowedHosts, hosts=allowed_hosts(settings))
    # Inside every middleware above and the exception handlers, where the router is.
    api.router.middleware_stack = HotRoutes(api.router.middleware_stack, app_obj)
    return api
