"""`transformer`: reshapes data with expressions: map, pick, rename, compose.

- `map`: with `expression`, each item (or the single input) becomes the expression's
  value; with `mapping` ({field: expression}), each item becomes a new object.
  With neither, the input passes through unchanged.
- `pick`: keeps only `fields` of each object.
- `rename`: renames keys by `mapping` ({old: new}) in each object; both are plain
  field names (`{"given_name": "given name"}`), not expressions.
- `compose`: builds one new object from `mapping` ({key: expression}) over the
  run's names (inputs, `outputs.<id>`, `input`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from ductwork.engine.templating import Budget, limits
from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType, evaluate
from ductwork.nodes.filter import item_names


class TransformerConfig(NodeConfig):
    transform_type: Literal["map", "pick", "rename", "compose"] = "map"
    source: str = Field(default="input", description="Expression giving the data to transform.")
    expression: str | None = Field(
        default=None, description="map: expression computing each new item.", examples=["value * 2"]
    )
    mapping: dict[str, str] = Field(
        default_factory=dict,
        description="map/compose: {field: expression}; rename: {old_name: new_name}.",
    )
    fields: list[str] = Field(default_factory=list, description="pick: the keys to keep.")

    @model_validator(mode="after")
    def _needs(self) -> TransformerConfig:
        if self.transform_type == "pick" and not self.fields:
            raise ValueError("pick needs `fields`: the keys to keep")
        if self.transform_type in ("rename", "compose") and not self.mapping:
            raise ValueError(f"{self.transform_type} needs `mapping`")
        if self.transform_type == "map" and self.expression and self.mapping:
            raise ValueError("map takes `expression` or `mapping`, not both")
        return self


def _each(data: Any, function: Any) -> Any:
    return [function(item) for item in data] if isinstance(data, list) else function(data)


def _each_object(
    data: Any, transform: str, function: Callable[[dict[str, Any]], dict[str, Any]]
) -> Any:
    """`function` applied to each object in `data` (or to `data` itself); other values fail."""

    def apply(item: Any) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise NodeError(f"{transform} works on objects, got {type(item).__name__}")
        return function(item)

    return _each(data, apply)


class TransformerNode(NodeType[TransformerConfig]):
    type_name = "transformer"
    description = (
        "Reshapes data: map (per item), pick (keep keys), rename (keys), compose (new object)."
    )
    config_model = TransformerConfig
    expression_fields = frozenset({"source", "expression", "mapping"})

    def json_schema(self) -> dict[str, Any]:
        schema = super().json_schema()
        schema["description"] = __doc__
        return schema

    def expression_fields_for(self, config: Mapping[str, Any]) -> frozenset[str]:
        """`rename` maps field names to field names: its `mapping` holds no expressions."""
        if config.get("transform_type") == "rename":
            return frozenset({"source"})
        return self.expression_fields

    async def run(self, config: TransformerConfig, ctx: NodeContext) -> NodeResult:
        base = dict(ctx.names)
        # One template budget for the whole run: items cannot reset it (see templating.limits).
        with limits() as budget:
            return NodeResult(output=await self._transform(config, ctx, base, budget))

    async def _transform(
        self, config: TransformerConfig, ctx: NodeContext, base: dict[str, Any], budget: Budget
    ) -> Any:
        data = ctx.input if config.source == "input" else evaluate(config.source, base, "source")
        kind = config.transform_type
        if kind == "compose":
            return {k: evaluate(e, base, f"mapping.{k}") for k, e in config.mapping.items()}
        if kind == "pick":
            keep = config.fields
            return _each_object(data, kind, lambda obj: {k: v for k, v in obj.items() if k in keep})
        if kind == "rename":
            renames = config.mapping
            return _each_object(
                data, kind, lambda obj: {renames.get(k, k): v for k, v in obj.items()}
            )
        if config.expression:
            expression = config.expression
            return await _each_evaluated(
                data,
                budget,
                lambda item: evaluate(expression, item_names(base, item), "expression"),
            )
        if config.mapping:
            mapping = config.mapping
            return await _each_evaluated(
                data,
                budget,
                lambda item: {
                    k: evaluate(e, item_names(base, item), f"mapping.{k}")
                    for k, e in mapping.items()
                },
            )
        return data


async def _each_evaluated(data: Any, budget: Budget, function: Callable[[Any], Any]) -> Any:
    """`_each` for expression work: yields the loop between items when it has held it a while."""
    if not isinstance(data, list):
        return function(data)
    results = []
    for item in data:
        results.append(function(item))
        await budget.breathe()
    return results
