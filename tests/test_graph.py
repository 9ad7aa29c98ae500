"""Validation: every problem is reported with its node and field."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from ductwork.engine.graph import build_plan, validate
from ductwork.models import ValidationIssue, WorkflowDefinition
from ductwork.nodes.registry import REGISTRY
from tests.support.seed import SEED_BODY


def issues(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[ValidationIssue]:
    return validate(
        WorkflowDefinition.model_validate({"name": "t", "nodes": nodes, "edges": edges}), REGISTRY
    )


def node(node_id: str, type_: str = "transformer", **config: Any) -> dict[str, Any]:
    return {"id": node_id, "type": type_, "config": config}


def test_seed_workflow_is_valid_and_ordered() -> None:
    plan = build_plan(WorkflowDefinition.model_validate(SEED_BODY), REGISTRY)
    assert plan.order == ("start", "ai1", "end")
    assert plan.entries == ("start",)


def test_react_flow_edges_are_accepted() -> None:
    definition = WorkflowDefinition.model_validate(
        {
            "name": "rf",
            "nodes": [node("c", "condition", condition="x > 1"), node("a"), node("b")],
            "edges": [
                {"id": "e1", "source": "c", "target": "a", "sourceHandle": "true"},
                {"id": "e2", "source": "c", "target": "b", "sourceHandle": "false"},
            ],
        }
    )
    plan = build_plan(definition, REGISTRY)
    assert [e.branch for e in plan.nodes["c"].outgoing] == ["true", "false"]


def test_duplicate_ids() -> None:
    found = issues([node("a"), node("a")], [])
    assert found[0].node_id == "a" and found[0].field == "nodes[1].id"
    assert "duplicate" in found[0].message


def test_edge_to_unknown_node() -> None:
    found = issues([node("a")], [{"from": "a", "to": "ghost"}])
    assert found == [
        ValidationIssue(
            node_id="ghost", field="edges[0].to", message="edge refers to unknown node 'ghost'"
        )
    ]


def test_cycle_is_named() -> None:
    found = issues(
        [node("s"), node("a"), node("b"), node("c")],
        [
            {"from": "s", "to": "a"},
            {"from": "a", "to": "b"},
            {"from": "b", "to": "c"},
            {"from": "c", "to": "a"},
        ],
    )
    assert len(found) == 1
    assert found[0].field == "edges"
    assert found[0].message == "cycle: a -> b -> c -> a"


def test_no_entry_node_and_self_loop() -> None:
    found = issues([node("a")], [{"from": "a", "to": "a"}])
    assert any("cycle: a -> a" in i.message for i in found)


def test_unknown_type_lists_known_types() -> None:
    found = issues([node("x", "teleport")], [])
    assert found[0].node_id == "x" and found[0].field == "type"
    assert "teleport" in found[0].message and "ai-processor" in found[0].message


def test_config_failing_its_model() -> None:
    found = issues([node("d", "delay", delay_seconds=-1), node("a", "ai-processor")], [])
    by_node = {i.node_id: i for i in found}
    assert by_node["d"].field == "config.delay_seconds"
    assert by_node["a"].field == "config.prompt"
    assert "required" in by_node["a"].message.lower()


def test_unknown_config_key_is_an_error() -> None:
    found = issues([node("d", "delay", delay_secs=1, delay_seconds=1)], [])
    assert found[0].field == "config.delay_secs"


def test_template_syntax_error() -> None:
    found = issues([node("e", "email", to="a@example.com", subject="Hi {{ name", body="x")], [])
    assert found[0].node_id == "e" and found[0].field == "config.subject"
    assert "syntax error" in found[0].message


def test_expression_syntax_error() -> None:
    found = issues([node("c", "condition", condition="status ==")], [])
    assert found[0].field == "config.condition"


def test_impossible_branch_labels() -> None:
    found = issues(
        [node("c", "condition", condition="x"), node("a"), node("b")],
        [{"from": "c", "to": "a", "branch": "maybe"}, {"from": "a", "to": "b", "branch": "error"}],
    )
    fields = {(i.node_id, i.field) for i in found}
    assert ("c", "edges[0].branch") in fields
    assert ("a", "edges[1].branch") in fields
    messages = " ".join(i.message for i in found)
    assert "cannot take branch 'maybe'" in messages and "on_error" in messages


def test_error_branch_allowed_with_on_error_branch() -> None:
    nodes = [node("s"), {**node("a"), "on_error": "branch"}, node("b")]
    assert (
        issues(nodes, [{"from": "s", "to": "a"}, {"from": "a", "to": "b", "branch": "error"}]) == []
    )


def test_empty_workflow() -> None:
    assert issues([], [])[0].field == "nodes"


@pytest.mark.parametrize("count", [40])
def test_many_problems_all_reported(count: int) -> None:
    nodes = [node(f"n{i}", "teleport") for i in range(count)]
    assert len(issues(nodes, [])) == count


SEED_NODE_CONFIGS: dict[str, dict[str, Any]] = {
    "start": {},
    "ai-processor": {
        "prompt": "Say hello to {{user_name}}",
        "model": "google/gemini-2.0-flash-exp:free",
        "temperature": 0.7,
        "max_tokens": 2048,
        "system_prompt": "You are a helpful assistant",
    },
    "email": {"to": "{{email}}", "subject": "Hello", "body": "Result: {{outputs.ai1}}"},
    "data-source": {"source_type": "api", "endpoint": "https://api.example.com/data"},
    "webhook": {"url": "https://example.com/webhook", "method": "POST"},
    "filter": {"condition": "value > 10"},
    "transformer": {"transform_type": "map"},
    "condition": {"condition": "status == 'active'"},
    "delay": {"delay_seconds": 5},
    "end": {},
}


def test_every_seed_node_config_validates_as_written() -> None:
    assert set(SEED_NODE_CONFIGS) == set(REGISTRY)
    nodes = [
        {"id": "ai1" if t == "ai-processor" else t, "type": t, "config": c}
        for t, c in SEED_NODE_CONFIGS.items()
    ]
    order = [n["id"] for n in nodes]
    edges = [{"from": a, "to": b} for a, b in itertools.pairwise(order)]
    assert (
        validate(
            WorkflowDefinition.model_validate({"name": "seed", "nodes": nodes, "edges": edges}),
            REGISTRY,
        )
        == []
    )
