"""`delay`: waits `delay_seconds`, durably: long waits park the run instead of a worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pydantic import Field

from ductwork.engine.limits import WorkflowLimits, over
from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType


class DelayConfig(NodeConfig):
    delay_seconds: float = Field(
        ge=0,
        le=366 * 86_400,
        description="How long to wait; at most DUCTWORK_MAX_DELAY_SECONDS.",
    )


class DelayNode(NodeType[DelayConfig]):
    type_name = "delay"
    description = (
        "Waits before continuing. Waits longer than DUCTWORK_DURABLE_DELAY_THRESHOLD_SECONDS "
        "park the run (no worker held) and resume on time, even after restarts."
    )
    config_model = DelayConfig

    def limit_issues(
        self,
        config: DelayConfig,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        """`delay_seconds` past DUCTWORK_MAX_DELAY_SECONDS."""
        ceiling = limits.max_delay_seconds
        if ceiling is None or "delay_seconds" in rendered_later:
            return []
        if config.delay_seconds > ceiling:
            return [
                (
                    "delay_seconds",
                    over(
                        "delay_seconds", config.delay_seconds, ceiling, "DUCTWORK_MAX_DELAY_SECONDS"
                    ),
                )
            ]
        return []

    async def run(self, config: DelayConfig, ctx: NodeContext) -> NodeResult:
        settings = ctx.services.settings
        # A templated delay is known only now; a saved one may predate a lowered ceiling.
        for field, message in self.limit_issues(config, WorkflowLimits.from_settings(settings)):
            raise NodeError(f"config.{field}: {message}")
        threshold = settings.durable_delay_threshold_seconds
        if config.delay_seconds > threshold:
            wake_at = datetime.now(UTC) + timedelta(seconds=config.delay_seconds)
            return NodeResult(output=ctx.input, park_until=wake_at)
        await asyncio.sleep(config.delay_seconds)
        return NodeResult(output=ctx.input)
