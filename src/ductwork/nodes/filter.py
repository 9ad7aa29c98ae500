"""`filter`: keeps the items of a list for which a condition holds."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ductwork.engine.templating import limits
from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType, evaluate


class FilterConfig(NodeConfig):
    condition: str = Field(
        min_length=1,
        description=(
            "Expression evaluated once per item. The item's fields are names (`value > 10` "
            'for items like {"value": 12}); the item itself is `item` (scalars also `value`).'
        ),
        examples=["value > 10", "item.status == 'active'"],
    )
    items: str = Field(
        default="input",
        description="Expression giving the list to filter; default the node's input.",
        examples=["input", "outputs.fetch.results"],
    )


def as_list(value: Any, *, node_field: str) -> list[Any]:
    """The list to work on: a list as is; an object's single list-valued field; else an error."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        lists = [item for item in value.values() if isinstance(item, list)]
        if len(lists) == 1:
            return lists[0]
    raise NodeError(f"{node_field} must give a list, got {type(value).__name__}")


def item_names(base: dict[str, Any], item: Any) -> dict[str, Any]:
    """Names for a per-item expression: run names, then the item's fields, `item` and `value`."""
    names = {**base, "item": item}
    if isinstance(item, dict):
        names.update(item)
    else:
        names["value"] = item
    return names


class FilterNode(NodeType[FilterConfig]):
    type_name = "filter"
    description = "Keeps the items of a list for which `condition` holds."
    config_model = FilterConfig
    expression_fields = frozenset({"condition", "items"})

    async def run(self, config: FilterConfig, ctx: NodeContext) -> NodeResult:
        base = dict(ctx.names)
        # One template budget for the whole run: items cannot reset it (see templating.limits).
        with limits() as budget:
            items = as_list(evaluate(config.items, base, "items"), node_field="config.items")
            kept = []
            for item in items:
                if evaluate(config.condition, item_names(base, item), "condition"):
                    kept.append(item)
                await budget.breathe()
        return NodeResult(output=kept, meta={"input_count": len(items), "kept": len(kept)})
