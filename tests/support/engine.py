"""Build a real embedded ductwork (SQLite store, in-process queue/bus) for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ductwork.models import WorkflowDefinition
from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, RetryableError
from ductwork.nodes.registry import REGISTRY
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings


class ProbeConfig(NodeConfig):
    fail_times: int = 0
    sleep: float = 0.0
    fatal: bool = False
    output: Any = None


class ProbeNode(NodeType[ProbeConfig]):
    """A test node: counts calls per (run, node), sleeps, fails a number of times."""

    type_name = "probe"
    config_model = ProbeConfig
    native_fields = frozenset({"output"})

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        self.attempts_seen: list[int] = []

    async def run(self, config: ProbeConfig, ctx: NodeContext) -> NodeResult:
        key = (ctx.execution_id, ctx.node_id)
        self.calls[key] = self.calls.get(key, 0) + 1
        self.attempts_seen.append(ctx.attempt)
        if config.sleep:
            await asyncio.sleep(config.sleep)
        if self.calls[key] <= config.fail_times:
            raise RetryableError(f"transient failure {self.calls[key]}")
        if config.fatal:
            from ductwork.nodes.base import NodeError

            raise NodeError("fatal failure")
        return NodeResult(output=config.output if config.output is not None else ctx.input)


@asynccontextmanager
async def embedded(
    tmp_path: Path, *, extra_nodes: list[NodeType[Any]] | None = None, **overrides: Any
) -> AsyncIterator[Ductwork]:
    """A started embedded app on a fresh SQLite file; closed afterwards."""
    settings = Settings(data_dir=tmp_path, **overrides)
    registry = dict(REGISTRY)
    for node in extra_nodes or []:
        registry[node.type_name] = node
    app = build(settings, registry=registry)
    await app.start()
    try:
        yield app
    finally:
        await app.close()


def definition(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | dict[str, Any]]
) -> WorkflowDefinition:
    """A definition from short node dicts and (from, to) pairs."""
    return WorkflowDefinition.model_validate(
        {
            "name": "test",
            "nodes": nodes,
            "edges": [{"from": e[0], "to": e[1]} if isinstance(e, tuple) else e for e in edges],
        }
    )
