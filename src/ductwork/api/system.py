"""Health, node and trigger types (JSON Schemas for builder UIs) and Prometheus metrics."""

from __future__ import annotations

import functools
import logging
import time
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

import ductwork
from ductwork.api.deps import App
from ductwork.api.responses import JSON
from ductwork.api.schemas import Health, NodeType, TriggerType
from ductwork.metrics import register as register_metrics
from ductwork.service import Ductwork
from ductwork.triggers.spec import trigger_schemas

router = APIRouter(tags=["system"])

log = logging.getLogger("ductwork.api")


@functools.cache
def _trigger_schemas() -> list[dict[str, Any]]:
    # Built on the first `GET /trigger-types`, not at start: JSON Schema generation of
    # the trigger models costs a server's start-up ~10 ms for a route builders call once.
    return trigger_schemas()


PROBE_WORKFLOW_ID: Final = ""
"""The id the store probe reads: no workflow has it (ids are never empty), so the read is
one primary-key look-up that finds nothing, however large the workflows are."""


class StoreProbe:
    """Whether the store answers a read, asked at most once per `seconds`.

    `/health` is polled by load balancers; each call used to read and parse the newest
    workflow (2.4 ms of CPU with a 40-node one). The answer, good or bad, is reused for
    `settings.health_cache_seconds`, so a store that goes down is reported within that
    time and every poll in between costs no store read.
    """

    def __init__(self, application: Ductwork) -> None:
        self.application = application
        self.seconds = application.settings.health_cache_seconds
        self._answer: bool | None = None
        self._expires = 0.0

    async def ok(self) -> bool:
        """Whether the store answered its last probe (probing again when that is stale)."""
        now = time.monotonic()
        if self._answer is not None and now < self._expires:
            return self._answer
        try:
            await self.application.store.get_workflow(PROBE_WORKFLOW_ID)
            answer = True
        except Exception:
            # The cause (a DSN, a host name, a driver message) is for the operator's log,
            # not for whoever can reach /health.
            log.exception("health check: the store is unavailable")
            answer = False
        self._answer, self._expires = answer, time.monotonic() + self.seconds
        return answer


@router.get(
    "/health",
    summary="Liveness and store reachability",
    response_model=Health,
    responses={503: {"model": Health, "description": "The store is unreachable."}},
)
async def health(request: Request) -> JSON:
    probe: StoreProbe = request.app.state.store_probe  # set by create_app
    app = probe.application
    if not await probe.ok():
        return JSON(status_code=503, content={"status": "unavailable", "store": "unavailable"})
    return JSON(
        {
            "status": "ok",
            "version": ductwork.__version__,
            "store": "ok",
            "active_runs": len(app.executor.active_runs),
        }
    )


@router.get(
    "/node-types",
    summary="Node types with their config JSON Schemas",
    response_model=list[NodeType],
)
async def node_types(app: App) -> JSON:
    return JSON(
        [
            {
                "type": name,
                "description": node.description,
                "config_schema": node.json_schema(),
                "branches": sorted(node.branches),
                "expression_fields": sorted(node.expression_fields),
                "raw_fields": sorted(node.raw_fields),
                "side_effects": node.side_effects,
            }
            for name, node in app.registry.items()
        ]
    )


@router.get(
    "/trigger-types",
    summary="Trigger types with their JSON Schemas",
    description="What a workflow's top-level `triggers` list may hold: each type's "
    "description and JSON Schema (for builder UIs, like `/node-types`).",
    response_model=list[TriggerType],
)
async def trigger_types() -> JSON:
    return JSON(_trigger_schemas())


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="The Prometheus text exposition format (`text/plain; version=0.0.4`).",
    response_class=PlainTextResponse,
    responses={
        200: {
            "content": {"text/plain": {"schema": {"type": "string"}}},
            "description": "Metrics in the Prometheus text exposition format.",
        }
    },
)
async def metrics() -> Response:
    # The first scrape loads prometheus_client and registers ductwork's collector (once
    # per process): a server nobody scrapes never imports it.
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    register_metrics()
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
