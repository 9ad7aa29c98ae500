"""`loop`: runs its body (the nodes with `parent: <loop id>`) once per item of a list.

The engine runs the items (`NodeContext.run_items`, engine/loop.py); this module
checks the config and limits and shapes the output by `on_item_error`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ductwork.engine.limits import WorkflowLimits, over
from ductwork.nodes.base import (
    ItemOutcome,
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
)


class LoopConfig(NodeConfig):
    items: list[Any] = Field(
        description=(
            "The list to run the body for, one item at a time: a list, or a lone "
            "`{{ expr }}` that gives one (it keeps its type, e.g. `{{ input.rows }}`)."
        ),
        examples=["{{ input.rows }}", "{{ outputs.fetch.results }}"],
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        description="How many items run at once; at most DUCTWORK_MAX_LOOP_CONCURRENCY.",
    )
    on_item_error: Literal["fail", "continue", "collect"] = Field(
        default="fail",
        description=(
            "A failed item: `fail` fails the loop (naming the item and body node; items in "
            "flight are cancelled); `continue` puts null in its place; `collect` outputs "
            '{"results": [...], "errors": [{"index", "node_id", "error"}]}.'
        ),
    )
    max_items: int | None = Field(
        default=None,
        ge=1,
        description="Fail when the list is longer; at most DUCTWORK_MAX_LOOP_ITEMS (the default).",
    )


class LoopNode(NodeType[LoopConfig]):
    type_name = "loop"
    description = (
        "For each item of a list, runs the loop's body: the nodes whose `parent` is this "
        "loop (edges only between body nodes; connect the loop node itself to the rest). "
        "Body templates see `item`, `index`, `loop` ({item, index, count}) and "
        "`outputs.<body node>` of the same item; a body entry node's input is the item. "
        "An item's result is its body's sink node output ({sink: output} for several). "
        "Output: the results in item order (see on_item_error). Each item is "
        "checkpointed: completed items never run again, after a crash or a retry."
    )
    config_model = LoopConfig
    native_fields = frozenset({"items"})
    has_body = True

    def limit_issues(
        self,
        config: LoopConfig,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        """`concurrency`, `max_items` and a literal `items` past their settings."""
        issues: list[tuple[str, str]] = []
        ceiling = limits.max_loop_concurrency
        if (
            ceiling is not None
            and "concurrency" not in rendered_later
            and config.concurrency > ceiling
        ):
            issues.append(
                (
                    "concurrency",
                    over(
                        "concurrency",
                        config.concurrency,
                        ceiling,
                        "DUCTWORK_MAX_LOOP_CONCURRENCY",
                    ),
                )
            )
        most = limits.max_loop_items
        if most is not None:
            if (
                config.max_items is not None
                and "max_items" not in rendered_later
                and config.max_items > most
            ):
                issues.append(
                    (
                        "max_items",
                        over("max_items", config.max_items, most, "DUCTWORK_MAX_LOOP_ITEMS"),
                    )
                )
            if "items" not in rendered_later and len(config.items) > most:
                issues.append(
                    (
                        "items",
                        f"{len(config.items)} items; the limit is {most} (DUCTWORK_MAX_LOOP_ITEMS)",
                    )
                )
        return issues

    async def run(self, config: LoopConfig, ctx: NodeContext) -> NodeResult:
        settings = ctx.services.settings
        # Templated values are known only now; a saved one may predate a lowered ceiling.
        for field, message in self.limit_issues(config, WorkflowLimits.from_settings(settings)):
            raise NodeError(f"config.{field}: {message}")
        items = config.items
        if config.max_items is not None and len(items) > config.max_items:
            raise NodeError(
                f"config.items: {len(items)} items; the limit is {config.max_items} "
                "(config.max_items)"
            )
        mode = config.on_item_error
        outcomes = await ctx.run_items(
            items, concurrency=config.concurrency, stop_on_error=mode == "fail"
        )
        failed = [outcome for outcome in outcomes if not outcome.ok]
        meta: dict[str, Any] = {"item_count": len(items), "failed_items": len(failed)}
        if mode == "fail":
            if failed:
                first = failed[0]
                raise NodeError(f"item {first.index} failed at node {first.node_id}: {first.error}")
            return NodeResult(output=[outcome.result for outcome in outcomes], meta=meta)
        results = [outcome.result if outcome.ok else None for outcome in outcomes]
        if mode == "continue":
            return NodeResult(output=results, meta=meta)
        return NodeResult(output={"results": results, "errors": _errors(failed)}, meta=meta)


def _errors(failed: list[ItemOutcome]) -> list[dict[str, Any]]:
    return [
        {"index": outcome.index, "node_id": outcome.node_id, "error": outcome.error}
        for outcome in failed
    ]
