"""Validate a workflow definition and turn it into an execution plan.

`build_plan` does every check DESIGN.md lists and compiles every template and
expression once; the executor caches plans per (workflow id, version).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ductwork.engine.templating import (
    Template,
    TemplateFailure,
    compile_expression,
    compile_template,
    has_template_syntax,
    iter_string_paths,
)
from ductwork.models import EdgeSpec, NodeSpec, ValidationIssue, WorkflowDefinition
from ductwork.nodes.base import NodeConfig, NodeType

ERROR_BRANCH = "error"


class WorkflowInvalid(Exception):
    """The definition has problems; `issues` lists each with node and field."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        summary = "; ".join(
            f"{issue.node_id or '-'}.{issue.field or '-'}: {issue.message}" for issue in issues[:5]
        )
        super().__init__(f"workflow is invalid: {summary}")


@dataclass(frozen=True, slots=True)
class ConfigTemplate:
    """A templated string inside a node's config, located by its key path."""

    path: tuple[str | int, ...]
    template: Template


@dataclass(frozen=True, slots=True)
class NodePlan:
    """A node ready to run: its type, validated config and compiled templates."""

    spec: NodeSpec
    node_type: NodeType[Any]
    config: NodeConfig
    templates: tuple[ConfigTemplate, ...]
    incoming: tuple[EdgeSpec, ...]
    outgoing: tuple[EdgeSpec, ...]

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def predecessors(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(edge.source for edge in self.incoming))


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated workflow: nodes in topological order."""

    nodes: Mapping[str, NodePlan]
    order: tuple[str, ...]
    entries: tuple[str, ...]


def _split_path(dotted: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for piece in dotted.replace("]", "").split("."):
        name, *indexes = piece.split("[")
        if name:
            parts.append(name)
        parts.extend(int(index) for index in indexes)
    return tuple(parts)


def _check_config(
    spec: NodeSpec, node_type: NodeType[Any], issues: list[ValidationIssue]
) -> tuple[NodeConfig | None, tuple[ConfigTemplate, ...]]:
    templates: list[ConfigTemplate] = []
    expression_fields = node_type.expression_fields_for(spec.config)
    html_fields = node_type.html_fields_for(spec.config)
    for dotted, text in iter_string_paths(spec.config):
        top = dotted.split(".")[0].split("[")[0]
        try:
            if top in expression_fields:
                compile_expression(text)
            elif has_template_syntax(text):
                native = top in node_type.native_fields
                template = compile_template(text, native, autoescape=top in html_fields)
                templates.append(ConfigTemplate(_split_path(dotted), template))
        except TemplateFailure as exc:
            issues.append(
                ValidationIssue(node_id=spec.id, field=f"config.{dotted}", message=str(exc))
            )
    try:
        config = node_type.config_model.model_validate(spec.config)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            location = ".".join(str(part) for part in error["loc"])
            issues.append(
                ValidationIssue(
                    node_id=spec.id,
                    field=f"config.{location}" if location else "config",
                    message=error["msg"],
                )
            )
        return None, ()
    return config, tuple(templates)


def _find_cycle(successors: Mapping[str, list[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for succ in successors.get(node, ()):
            if state.get(succ) == 1:
                return [*stack[stack.index(succ) :], succ]
            if succ not in state:
                found = visit(succ)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in successors:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def build_plan(definition: WorkflowDefinition, registry: Mapping[str, NodeType[Any]]) -> Plan:
    """Check everything and compile templates; raises WorkflowInvalid listing every problem."""
    issues: list[ValidationIssue] = []
    if not definition.nodes:
        issues.append(ValidationIssue(field="nodes", message="a workflow needs at least one node"))

    specs: dict[str, NodeSpec] = {}
    for index, spec in enumerate(definition.nodes):
        if spec.id in specs:
            issues.append(
                ValidationIssue(
                    node_id=spec.id, field=f"nodes[{index}].id", message="duplicate node id"
                )
            )
        else:
            specs[spec.id] = spec

    checked: dict[str, tuple[NodeType[Any], NodeConfig, tuple[ConfigTemplate, ...]]] = {}
    for spec in specs.values():
        node_type = registry.get(spec.type)
        if node_type is None:
            known = ", ".join(sorted(registry))
            issues.append(
                ValidationIssue(
                    node_id=spec.id,
                    field="type",
                    message=f"unknown node type {spec.type!r}; known types: {known}",
                )
            )
            continue
        config, templates = _check_config(spec, node_type, issues)
        if config is not None:
            checked[spec.id] = (node_type, config, templates)

    incoming: dict[str, list[EdgeSpec]] = {node_id: [] for node_id in specs}
    outgoing: dict[str, list[EdgeSpec]] = {node_id: [] for node_id in specs}
    seen_edges: set[tuple[str, str, str | None]] = set()
    for index, edge in enumerate(definition.edges):
        bad = False
        for end, node_id in (("from", edge.source), ("to", edge.target)):
            if node_id not in specs:
                issues.append(
                    ValidationIssue(
                        node_id=node_id,
                        field=f"edges[{index}].{end}",
                        message=f"edge refers to unknown node {node_id!r}",
                    )
                )
                bad = True
        if bad:
            continue
        if edge.source == edge.target:
            issues.append(
                ValidationIssue(
                    node_id=edge.source,
                    field=f"edges[{index}]",
                    message=f"cycle: {edge.source} -> {edge.source}",
                )
            )
            continue
        key = (edge.source, edge.target, edge.branch)
        if key in seen_edges:
            continue  # a duplicated edge means the same thing twice
        seen_edges.add(key)
        source_spec = specs[edge.source]
        if edge.branch is not None and edge.source in checked:
            node_type = checked[edge.source][0]
            allowed = set(node_type.branches)
            if edge.branch == ERROR_BRANCH:
                if source_spec.on_error != "branch":
                    issues.append(
                        ValidationIssue(
                            node_id=edge.source,
                            field=f"edges[{index}].branch",
                            message=(
                                "an 'error' edge needs on_error: 'branch' on its source node "
                                f"(it is {source_spec.on_error!r})"
                            ),
                        )
                    )
            elif edge.branch not in allowed:
                can = ", ".join(sorted(allowed | {ERROR_BRANCH})) or ERROR_BRANCH
                issues.append(
                    ValidationIssue(
                        node_id=edge.source,
                        field=f"edges[{index}].branch",
                        message=(
                            f"a {source_spec.type} node cannot take branch {edge.branch!r}; "
                            f"it can take: {can}"
                        ),
                    )
                )
        outgoing[edge.source].append(edge)
        incoming[edge.target].append(edge)

    cycle = _find_cycle({n: [e.target for e in outgoing[n]] for n in specs})
    if cycle:
        issues.append(
            ValidationIssue(node_id=cycle[0], field="edges", message="cycle: " + " -> ".join(cycle))
        )
    entries = tuple(node_id for node_id in specs if not incoming[node_id])
    if specs and not entries and not cycle:
        issues.append(
            ValidationIssue(field="edges", message="no entry node: every node has an incoming edge")
        )
    if issues:
        raise WorkflowInvalid(issues)

    order = _topological_order(specs, outgoing, incoming)
    nodes = {
        node_id: NodePlan(
            spec=specs[node_id],
            node_type=checked[node_id][0],
            config=checked[node_id][1],
            templates=checked[node_id][2],
            incoming=tuple(incoming[node_id]),
            outgoing=tuple(outgoing[node_id]),
        )
        for node_id in order
    }
    return Plan(nodes=nodes, order=order, entries=entries)


def _topological_order(
    specs: Mapping[str, NodeSpec],
    outgoing: Mapping[str, list[EdgeSpec]],
    incoming: Mapping[str, list[EdgeSpec]],
) -> tuple[str, ...]:
    remaining = {node_id: len({e.source for e in incoming[node_id]}) for node_id in specs}
    ready = [node_id for node_id, count in remaining.items() if count == 0]
    order: list[str] = []
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for target in dict.fromkeys(edge.target for edge in outgoing[node_id]):
            remaining[target] -= 1
            if remaining[target] == 0:
                ready.append(target)
    return tuple(order)


def validate(
    definition: WorkflowDefinition, registry: Mapping[str, NodeType[Any]]
) -> list[ValidationIssue]:
    """Every problem with a definition (empty when it is valid)."""
    try:
        build_plan(definition, registry)
    except WorkflowInvalid as exc:
        return exc.issues
    return []
