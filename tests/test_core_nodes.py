"""The data nodes on their own: filter, transformer, condition (no I/O, no executor)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from ductwork.nodes.base import NodeError, NodeServices
from ductwork.nodes.condition import ConditionConfig, ConditionNode
from ductwork.nodes.filter import FilterConfig, FilterNode
from ductwork.nodes.transformer import TransformerConfig, TransformerNode
from tests.support.node_context import FakeNodeContext


def ctx(input_: Any, **names: Any) -> FakeNodeContext:
    return FakeNodeContext(
        services=cast(NodeServices, None), input=input_, names={**names, "input": input_}
    )


async def transform(input_: Any, **config: Any) -> Any:
    result = await TransformerNode().run(TransformerConfig(**config), ctx(input_))
    return result.output


async def test_pick_and_rename_work_on_one_object_or_a_list() -> None:
    row = {"id": 1, "name": "Ann", "secret": "x"}
    assert await transform(row, transform_type="pick", fields=["id", "name"]) == {
        "id": 1,
        "name": "Ann",
    }
    assert (
        await transform([row, row], transform_type="rename", mapping={"id": "user_id"})
        == [{"user_id": 1, "name": "Ann", "secret": "x"}] * 2
    )


async def test_pick_on_something_that_is_not_an_object_names_the_transform() -> None:
    with pytest.raises(NodeError, match="pick works on objects, got int"):
        await transform([1, 2], transform_type="pick", fields=["id"])


async def test_map_expression_and_mapping() -> None:
    assert await transform([1, 2], transform_type="map", expression="value * 10") == [10, 20]
    assert await transform(
        [{"a": 1}], transform_type="map", mapping={"b": "a + 1", "whole": "item"}
    ) == [{"b": 2, "whole": {"a": 1}}]
    assert await transform({"x": 1}, transform_type="map") == {"x": 1}


async def test_filter_reports_a_non_list_and_names_the_field() -> None:
    node = FilterNode()
    with pytest.raises(NodeError, match=r"config\.items must give a list"):
        await node.run(FilterConfig(condition="value > 1"), ctx(5))
    with pytest.raises(NodeError, match=r"config\.condition: undefined variable"):
        await node.run(FilterConfig(condition="missing > 1"), ctx([{"a": 1}]))


async def test_condition_sees_inputs_and_the_input_fields() -> None:
    node = ConditionNode()
    result = await node.run(
        ConditionConfig(condition="status == 'active' and n > 1"), ctx({"n": 2}, status="active")
    )
    assert result.branch == "true" and result.output == {"result": True, "branch": "true"}
