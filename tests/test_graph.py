"""Validation: every problem is reported with its node and field; large graphs scale."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest

from ductwork.engine.graph import build_plan, validate
from ductwork.models import (
    EdgeSpec,
    NodeStatus,
    RunStatus,
    ValidationIssue,
    WorkflowDefinition,
)
from ductwork.nodes.registry import REGISTRY
from tests.support.engine import embedded
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
    "wait": {"timeout_seconds": 3600, "on_timeout": "continue", "message": "{{ input }}"},
    "code": {"code": "def main(input):\n    return input\n", "timeout_seconds": 5},
    "sub-workflow": {"workflow_id": "6650f0c2a1b2c3d4e5f60718", "inputs": {"x": "{{ input }}"}},
    "merge": {"mode": "by_key", "key": "id"},
    "loop": {"items": "{{ input.rows }}", "concurrency": 2},
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
    nodes.append({"id": "body", "type": "start", "parent": "loop"})  # a loop needs a body
    assert (
        validate(
            WorkflowDefinition.model_validate({"name": "seed", "nodes": nodes, "edges": edges}),
            REGISTRY,
        )
        == []
    )


# Scale: every graph walk is iterative ------------------------------------------------


def chain(length: int, **config: Any) -> WorkflowDefinition:
    nodes = [node(f"t{i}", **(config or {"transform_type": "map"})) for i in range(length)]
    edges = [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(length - 1)]
    return WorkflowDefinition.model_validate({"name": "chain", "nodes": nodes, "edges": edges})


@pytest.mark.parametrize("length", [1_200, 10_000])
def test_long_chain_validates_and_is_ordered(length: int) -> None:
    plan = build_plan(chain(length), REGISTRY)
    assert plan.order == tuple(f"t{i}" for i in range(length))
    assert plan.entries == ("t0",)


def test_cycle_through_a_long_chain_is_named() -> None:
    definition = chain(5_000)
    definition.edges.append(EdgeSpec.model_validate({"from": "t4999", "to": "t1"}))
    found = validate(definition, REGISTRY)
    assert len(found) == 1 and found[0].field == "edges" and found[0].node_id == "t1"
    assert found[0].message.startswith("cycle: t1 -> t2 -> t3 -> ")
    assert found[0].message.endswith(" -> t4998 -> t4999 -> t1")
    assert "t10 -> ... (4980 more) ... -> t4991" in found[0].message
    assert len(found[0].message) < 500, "a long cycle is abbreviated, not listed in full"


def test_reference_far_up_a_long_chain() -> None:
    nodes = [node(f"t{i}") for i in range(3_000)]
    nodes[-1] = node("t2999", transform_type="compose", mapping={"first": "outputs.t0"})
    nodes[1] = node("t1", transform_type="compose", mapping={"last": "outputs.t2999"})
    edges = [{"from": f"t{i}", "to": f"t{i + 1}"} for i in range(2_999)]
    found = issues(nodes, edges)
    assert [(i.node_id, i.field) for i in found] == [("t1", "config.mapping.last")]


# References to node outputs ------------------------------------------------------------


def test_unknown_output_in_a_template_is_an_issue() -> None:
    found = issues(
        [node("s", "start"), node("ai", "ai-processor", prompt="Sum up {{ outputs.nope }}")],
        [{"from": "s", "to": "ai"}],
    )
    assert found == [
        ValidationIssue(
            node_id="ai",
            field="config.prompt",
            message="outputs.nope: no node 'nope' in this workflow",
        )
    ]


def test_output_of_a_node_that_does_not_run_before() -> None:
    # s -> a -> b and s -> c: c cannot read a (a sibling), a cannot read b (downstream).
    found = issues(
        [
            node("s", "start"),
            node("a", "ai-processor", prompt="{{ outputs.b.text }}"),
            node("b"),
            node("c", "condition", condition="outputs.a == 'x'"),
        ],
        [{"from": "s", "to": "a"}, {"from": "a", "to": "b"}, {"from": "s", "to": "c"}],
    )
    by_node = {i.node_id: i for i in found}
    assert set(by_node) == {"a", "c"}
    assert by_node["a"].field == "config.prompt"
    assert by_node["a"].message.startswith("outputs.b: node 'b' does not run before 'a'")
    assert by_node["c"].field == "config.condition"
    assert by_node["c"].message.startswith("outputs.a: node 'a' does not run before 'c'")


def test_a_node_cannot_read_its_own_output() -> None:
    found = issues([node("t", transform_type="compose", mapping={"x": "outputs.t"})], [])
    assert [(i.field, i.message) for i in found] == [
        ("config.mapping.x", "outputs.t: a node cannot read its own output")
    ]


@pytest.mark.parametrize(
    ("type_", "config", "field"),
    [
        ("filter", {"condition": "value > outputs.gone"}, "config.condition"),
        ("filter", {"condition": "true", "items": "outputs.gone.rows"}, "config.items"),
        ("transformer", {"source": "outputs['gone']"}, "config.source"),
        ("transformer", {"expression": "value + outputs.gone"}, "config.expression"),
        (
            "transformer",
            {"transform_type": "compose", "mapping": {"k": "outputs.gone | length"}},
            "config.mapping.k",
        ),
        ("condition", {"condition": "outputs.gone.ok"}, "config.condition"),
        ("webhook", {"url": "https://example.com", "body": {"x": ["{{ outputs.gone }}"]}}, None),
    ],
)
def test_expressions_and_nested_templates_are_checked(
    type_: str, config: dict[str, Any], field: str | None
) -> None:
    found = issues([node("s", "start"), node("n", type_, **config)], [{"from": "s", "to": "n"}])
    assert [i.message for i in found] == ["outputs.gone: no node 'gone' in this workflow"]
    assert found[0].node_id == "n" and found[0].field == (field or "config.body.x[0]")


@pytest.mark.parametrize(
    "prompt",
    [
        "{{ outputs.s }} {{ outputs['s'] }} {{ outputs.s.deep.path }}",
        "{{ outputs[name] }}",  # dynamic: checked when the node runs
        "{{ 'outputs.nope' }} outputs.nope",  # text, not a reference
        "{% for key, value in outputs.items() %}{{ key }}{% endfor %}",
        "{% for outputs in [{'nope': 1}] %}{{ outputs.nope }}{% endfor %}",  # shadowed
        "{{ outputs | tojson }}",
    ],
)
def test_references_that_are_allowed(prompt: str) -> None:
    nodes = [node("s", "start"), node("ai", "ai-processor", prompt=prompt)]
    assert issues(nodes, [{"from": "s", "to": "ai"}]) == []


def test_quoted_id_is_written_as_used() -> None:
    found = issues([node("ai", "ai-processor", prompt="{{ outputs['my-node'] }}")], [])
    assert found[0].message == "outputs['my-node']: no node 'my-node' in this workflow"


def test_reference_through_a_branch_or_join_is_upstream() -> None:
    nodes = [
        node("c", "condition", condition="x > 1"),
        node("yes"),
        node("no"),
        node("join", transform_type="compose", mapping={"a": "outputs.yes", "b": "outputs.c"}),
    ]
    edges = [
        {"from": "c", "to": "yes", "branch": "true"},
        {"from": "c", "to": "no", "branch": "false"},
        {"from": "yes", "to": "join"},
        {"from": "no", "to": "join"},
    ]
    assert issues(nodes, edges) == []


def test_deeply_nested_expression_is_an_issue_not_a_crash() -> None:
    deep = "(" * 2_000 + "1" + ")" * 2_000
    found = issues([node("c", "condition", condition=deep)], [])
    assert [(i.node_id, i.field) for i in found] == [("c", "config.condition")]


# Templated fields whose type is not a string -------------------------------------------


def test_templated_number_is_validated_after_rendering() -> None:
    definition = WorkflowDefinition.model_validate(
        {"name": "t", "nodes": [node("d", "delay", delay_seconds="{{ wait }}")], "edges": []}
    )
    plan = build_plan(definition, REGISTRY)
    (template,) = plan.nodes["d"].templates
    assert template.path == ("delay_seconds",)
    assert template.template.render({"wait": 2}) == 2, "a lone {{ expr }} keeps its type"


def test_templated_field_does_not_hide_other_problems() -> None:
    found = issues(
        [
            node("d", "delay", delay_seconds="{{ wait }}", delay_secs=1),
            node("e", "delay"),
            node("f", "delay", delay_seconds=1, delay_secs="{{ wait }}"),
        ],
        [],
    )
    assert [(i.node_id, i.field) for i in found] == [
        ("d", "config.delay_secs"),
        ("e", "config.delay_seconds"),
        ("f", "config.delay_secs"),
    ]


def test_non_template_string_in_a_number_field_is_still_refused() -> None:
    found = issues([node("d", "delay", delay_seconds="soon")], [])
    assert [i.field for i in found] == ["config.delay_seconds"]
    assert found[0].message.startswith("Input should be a valid number")


def test_template_paths_keep_keys_with_dots() -> None:
    definition = WorkflowDefinition.model_validate(
        {
            "name": "t",
            "nodes": [
                node(
                    "w",
                    "webhook",
                    url="https://example.com",
                    headers={"X-Trace.Id": "{{ trace }}"},
                    body={"items": [{"a.b": "{{ x }}"}]},
                )
            ],
            "edges": [],
        }
    )
    plan = build_plan(definition, REGISTRY)
    assert [t.path for t in plan.nodes["w"].templates] == [
        ("headers", "X-Trace.Id"),
        ("body", "items", 0, "a.b"),
    ]


def nested(depth: int) -> Any:
    value: Any = "{{ x }}"
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize("depth", [64, 300, 5_000])
def test_deeply_nested_config_is_an_issue(depth: int) -> None:
    found = issues([node("w", "webhook", url="https://example.com", body=nested(depth))], [])
    assert [(i.node_id, i.field, i.message) for i in found] == [
        ("w", "config.body", "nested more than 64 levels deep")
    ]


async def test_config_nested_to_the_limit_saves_and_runs(tmp_path: Path) -> None:
    # The limit counts objects and lists below the config: `body` and 63 more.
    config = {"url": "https://example.com", "body": nested(63), "method": "GET"}
    definition = WorkflowDefinition.model_validate(
        {"name": "deep", "nodes": [node("w", "webhook", **config)], "edges": []}
    )
    assert validate(definition, REGISTRY) == []
    async with embedded(tmp_path) as app:
        workflow = await app.create_workflow(definition)
        assert (await app.get_workflow(workflow.id)).definition == definition


# Through the service and the API ---------------------------------------------------------


async def test_ten_thousand_node_chain_saves_and_runs(tmp_path: Path) -> None:
    async with embedded(tmp_path) as app:
        workflow = await app.create_workflow(chain(10_000))
        run, _ = await app.execute(
            workflow.id, {"v": 1}, wait=True, wait_seconds=3_600, with_events=False
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert len(run.node_states) == 10_000
    assert {state.status for state in run.node_states.values()} == {NodeStatus.COMPLETED}


def test_long_chain_through_the_api(client: httpx.Client) -> None:
    body = chain(999).dump()
    assert client.post("/workflows/validate", json=body).json() == {"valid": True, "issues": []}
    created = client.post("/workflows/", json=body)
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    run = client.post(f"/workflows/{workflow_id}/execute", json={"inputs": {"v": 1}})
    assert run.status_code == 200 and run.json()["status"] == "success", run.text
    read = client.get(f"/workflows/executions/{run.json()['execution_id']}")
    assert read.status_code == 200 and len(read.json()["node_states"]) == 999


def test_bad_reference_is_a_422_problem(client: httpx.Client) -> None:
    body = {
        "name": "refs",
        "nodes": [node("s", "start"), node("ai", "ai-processor", prompt="{{ outputs.nope }}")],
        "edges": [{"from": "s", "to": "ai"}],
    }
    response = client.post("/workflows/", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "node_id": "ai",
            "field": "config.prompt",
            "message": "outputs.nope: no node 'nope' in this workflow",
        }
    ]


def test_templated_delay_saves_and_runs(client: httpx.Client) -> None:
    body = {
        "name": "templated delay",
        "nodes": [node("s", "start"), node("d", "delay", delay_seconds="{{ wait }}")],
        "edges": [{"from": "s", "to": "d"}],
    }
    created = client.post("/workflows/", json=body)
    assert created.status_code == 201, created.text
    execute = f"/workflows/{created.json()['id']}/execute"
    good = client.post(execute, json={"inputs": {"wait": 0}}).json()
    assert good["status"] == "success", good
    bad = client.post(execute, json={"inputs": {"wait": "soon"}}).json()
    assert bad["status"] == "error"
    run = client.get(f"/workflows/executions/{bad['execution_id']}").json()
    error = run["node_states"]["d"]["error"]
    assert "config.delay_seconds: Input should be a valid number" in error, error
    assert run["error"].startswith("node d failed: "), run["error"]


async def test_waiting_on_a_run_reads_each_event_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sync wait's fallback poll (for a bus that dropped the end) reads only new events;
    re-reading the whole run every 2 s made waiting on a large run quadratic."""
    async with embedded(tmp_path, durable_delay_threshold_seconds=10) as app:

        async def dropped(execution_id: str, events: Any) -> None:
            return None

        monkeypatch.setattr(app.bus, "publish_many", dropped)
        full_reads: list[bool] = []
        polled: list[int] = []
        get_run, list_events = app.store.get_run, app.store.list_events

        async def counting_get_run(
            execution_id: str, *, with_events: bool = True, **kw: Any
        ) -> Any:
            full_reads.append(with_events)
            return await get_run(execution_id, with_events=with_events, **kw)

        async def counting_list_events(execution_id: str, after_seq: int = 0) -> Any:
            events = await list_events(execution_id, after_seq)
            polled.extend(event.seq for event in events)
            return events

        monkeypatch.setattr(app.store, "get_run", counting_get_run)
        monkeypatch.setattr(app.store, "list_events", counting_list_events)
        run = await app.execute_definition(
            WorkflowDefinition.model_validate(
                {"name": "slow", "nodes": [node("d", "delay", delay_seconds=2.5)], "edges": []}
            )
        )
    assert run.status is RunStatus.SUCCESS, run.error
    assert full_reads == [True], "the run is read once, when it has ended"
    assert polled and sorted(polled) == sorted(set(polled)), "no event is read twice"
