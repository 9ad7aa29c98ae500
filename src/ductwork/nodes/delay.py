"""`delay`: waits `delay_seconds`, durably: long waits park the run instead of a worker."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from pydantic import Field

from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType


class DelayConfig(NodeConfig):
    delay_seconds: float = Field(ge=0, le=366 * 86_400, description="How long to wait.")


class DelayNode(NodeType[DelayConfig]):
    type_name = "delay"
    description = (
        "Waits before continuing. Waits longer than DUCTWORK_DURABLE_DELAY_THRESHOLD_SECONDS "
        "park the run (no worker held) and resume on time, even after restarts."
    )
    config_model = DelayConfig

    async def run(self, config: DelayConfig, ctx: NodeContext) -> NodeResult:
        threshold = ctx.services.settings.durable_delay_threshold_seconds
        if config.delay_seconds > threshold:
            wake_at = datetime.now(UTC) + timedelta(seconds=config.delay_seconds)
            return NodeResult(output=ctx.input, park_until=wake_at)
        await asyncio.sleep(config.delay_seconds)
        return NodeResult(output=ctx.input)
