"""`merge`: waits for its incoming branches and combines their outputs.

Modes (the input is {predecessor id: output} over the active incoming edges, in
edge order; skipped branches and branches whose edge was not taken are left out):

- `wait_all` (default): that object as it is.
- `append`: list outputs concatenated in edge order; any other output is one item.
- `first`: the output of the first branch to complete. The node runs as soon as one
  incoming branch has completed (`NodeType.fires_early`); the other branches keep
  running and the run still waits for them. Branches that completed in the same engine
  tick count in edge order. A branch that failed with on_error continue (output null)
  is never taken while a completed one exists; when every branch failed, the first
  failed one is (null).
- `by_key`: list-of-object outputs joined on `key`: objects with the same key value
  are merged into one (fields of later branches win), in the order keys first appear
  (the first branch's order, then keys new in later branches).

When every branch is skipped, the merge is skipped (as any node without an active
incoming edge).
"""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import Field, model_validator

from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType

MergeMode = Literal["wait_all", "append", "first", "by_key"]


class MergeConfig(NodeConfig):
    mode: MergeMode = Field(
        default="wait_all",
        description="wait_all: {branch id: output}; append: concatenate lists; first: the "
        "first branch to complete; by_key: join lists of objects on `key`.",
    )
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="by_key: the field whose value joins objects across branches.",
        examples=["id"],
    )

    @model_validator(mode="after")
    def _needs_key(self) -> MergeConfig:
        if self.mode == "by_key" and self.key is None:
            raise ValueError("by_key needs `key`: the field to join on")
        if self.mode != "by_key" and self.key is not None:
            raise ValueError("`key` is only used by mode by_key")
        return self


def append_outputs(branches: dict[str, Any]) -> list[Any]:
    """Every branch's list items in edge order; a non-list output is one item."""
    merged: list[Any] = []
    for output in branches.values():
        if isinstance(output, list):
            merged.extend(output)
        else:
            merged.append(output)
    return merged


def join_by_key(branches: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """Objects of every branch's list merged per value of `key`, in first-seen order."""
    joined: dict[bytes, dict[str, Any]] = {}
    for branch, output in branches.items():
        if not isinstance(output, list):
            raise NodeError(
                f"by_key: the output of {branch} is {type(output).__name__}, not a list of objects"
            )
        for index, item in enumerate(output):
            if not isinstance(item, dict):
                raise NodeError(
                    f"by_key: item {index} of {branch} is {type(item).__name__}, not an object"
                )
            if key not in item:
                raise NodeError(f"by_key: item {index} of {branch} has no {key!r}")
            # Encoded, so any JSON value (even an object) can be a join key.
            ident = orjson.dumps(item[key], option=orjson.OPT_SORT_KEYS)
            existing = joined.get(ident)
            joined[ident] = item.copy() if existing is None else {**existing, **item}
    return list(joined.values())


class MergeNode(NodeType[MergeConfig]):
    type_name = "merge"
    description = (
        "Waits for its incoming branches and combines them: wait_all (object keyed by "
        "branch), append (concatenate lists), first (first branch to finish), by_key "
        "(join lists of objects on a key). Skipped branches are left out."
    )
    config_model = MergeConfig
    keyed_input = True

    def fires_early(self, config: MergeConfig) -> bool:
        return config.mode == "first"

    async def run(self, config: MergeConfig, ctx: NodeContext) -> NodeResult:
        branches = ctx.input if isinstance(ctx.input, dict) else {}
        if config.mode == "wait_all":
            return NodeResult(output=dict(branches))
        if config.mode == "append":
            return NodeResult(output=append_outputs(branches))
        if config.mode == "first":
            first = next(iter(branches), None)
            return NodeResult(
                output=None if first is None else branches[first], meta={"branch": first}
            )
        assert config.key is not None
        return NodeResult(output=join_by_key(branches, config.key))
