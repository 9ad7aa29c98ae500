"""`end`: marks completion; its output becomes the run's result."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType


class EndConfig(NodeConfig):
    """`output` optionally shapes the result, e.g. `{"summary": "{{ outputs.ai1 }}"}`."""

    output: Any = Field(default=None, description="The run's result; default: this node's input.")


class EndNode(NodeType[EndConfig]):
    type_name = "end"
    description = "Marks workflow completion. Its output (default: its input) is the run's result."
    config_model = EndConfig
    native_fields = frozenset({"output"})

    async def run(self, config: EndConfig, ctx: NodeContext) -> NodeResult:
        return NodeResult(output=ctx.input if config.output is None else config.output)
