"""`condition`: evaluates an expression and takes branch "true" or "false"."""

from __future__ import annotations

from pydantic import Field

from ductwork.nodes.base import NodeConfig, NodeContext, NodeResult, NodeType, evaluate


class ConditionConfig(NodeConfig):
    condition: str = Field(
        min_length=1,
        description=(
            "A Jinja2 expression, e.g. `status == 'active'`. Names: run inputs, "
            "`outputs.<id>`, `input`, and the fields of `input` when it is an object."
        ),
        examples=["status == 'active'", "outputs.score.value > 0.5"],
    )


class ConditionNode(NodeType[ConditionConfig]):
    type_name = "condition"
    description = "Branching: follows edges with branch 'true' or 'false'."
    config_model = ConditionConfig
    expression_fields = frozenset({"condition"})
    branches = frozenset({"true", "false"})

    async def run(self, config: ConditionConfig, ctx: NodeContext) -> NodeResult:
        names = ctx.names
        if isinstance(ctx.input, dict):
            # The input's fields are in scope too, under the run's own names.
            names = {**ctx.input, **names}
        result = bool(evaluate(config.condition, names, "condition"))
        branch = "true" if result else "false"
        return NodeResult(output={"result": result, "branch": branch}, branch=branch)
