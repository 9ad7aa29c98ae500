"""`start`: the entry point; its output is the run's inputs."""

from __future__ import annotations

from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType


class StartConfig(NodeConfig):
    """No settings: a start node hands the run's inputs to its successors."""


class StartNode(NodeType[StartConfig]):
    type_name = "start"
    description = "Entry point of a workflow. Outputs the run's inputs."
    config_model = StartConfig

    async def run(self, config: StartConfig, ctx: NodeContext) -> NodeResult:
        return NodeResult(output=ctx.input)
