"""Loop bodies in a workflow graph: which scope each node belongs to, and the save-time
rules that keep bodies self-contained.

A node with `parent: "<loop id>"` belongs to that loop's body; a node without one
belongs to the top-level graph (scope None). Loops may nest (a loop inside a body).
Edges connect nodes of the same scope only, so every scope is a graph of its own,
planned like a workflow (`graph.build_plan` gives each body a `Plan`). Pure functions,
no I/O; `graph.py` calls them while it validates.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductwork.models import NodeSpec, ValidationIssue
from ductwork.nodes.base import NodeType

Scope = str | None
"""The loop whose body a node is in; None for the top-level graph."""


def node_scopes(
    specs: Mapping[str, NodeSpec], registry: Mapping[str, NodeType[Any]]
) -> tuple[dict[str, Scope], list[ValidationIssue]]:
    """Each node's scope, and the problems with `parent` fields.

    A `parent` that names no node, a node that has no body, or a chain of parents
    that loops back is an issue; such a node is treated as top-level afterwards, so
    the other checks still run. A node that parks until resumed (`wait`) cannot be
    in a body: an item would hold its loop for as long as it waits.
    """
    issues: list[ValidationIssue] = []
    scope_of: dict[str, Scope] = {}
    for node_id, spec in specs.items():
        parent = spec.parent
        if parent is None:
            scope_of[node_id] = None
            continue
        parent_spec = specs.get(parent)
        message = None
        if parent == node_id:
            message = "a node cannot be its own parent"
        elif parent_spec is None:
            message = f"no node {parent!r} in this workflow"
        else:
            parent_type = registry.get(parent_spec.type)
            if parent_type is not None and not parent_type.has_body:
                message = (
                    f"node {parent!r} is a {parent_spec.type} node; only a loop node has a body"
                )
        node_type = registry.get(spec.type)
        if message is None and node_type is not None and node_type.resumable:
            message = (
                f"a {spec.type} node cannot be in a loop body: it parks until resumed, and "
                "an item cannot wait that long (put it before or after the loop)"
            )
        if message is not None:
            issues.append(ValidationIssue(node_id=node_id, field="parent", message=message))
            scope_of[node_id] = None
        else:
            scope_of[node_id] = parent
    for node_id in specs:
        cycle = _parent_cycle(node_id, scope_of)
        if cycle is not None:
            issues.append(
                ValidationIssue(
                    node_id=node_id,
                    field="parent",
                    message="loops cannot contain each other: " + " -> ".join(cycle),
                )
            )
    if issues:
        # A cycle of parents has no top: cut every node of one loose.
        for issue in issues:
            if issue.node_id is not None:
                scope_of[issue.node_id] = None
    return scope_of, issues


def _parent_cycle(node_id: str, scope_of: Mapping[str, Scope]) -> list[str] | None:
    """`[a, b, a]` when following `parent` from `node_id` comes back to it."""
    chain = [node_id]
    seen = {node_id}
    current = scope_of.get(node_id)
    while current is not None:
        chain.append(current)
        if current == node_id:
            return chain
        if current in seen:
            return None  # a cycle further up: reported for its own nodes
        seen.add(current)
        current = scope_of.get(current)
    return None


def loop_issues(
    specs: Mapping[str, NodeSpec],
    registry: Mapping[str, NodeType[Any]],
    scope_of: Mapping[str, Scope],
) -> list[ValidationIssue]:
    """A loop without body nodes; node ids that per-item states could be mistaken for."""
    issues: list[ValidationIssue] = []
    loops = [
        node_id
        for node_id, spec in specs.items()
        if (node_type := registry.get(spec.type)) is not None and node_type.has_body
    ]
    if not loops:
        return issues
    with_body = {scope for scope in scope_of.values() if scope is not None}
    for loop_id in loops:
        if loop_id not in with_body:
            issues.append(
                ValidationIssue(
                    node_id=loop_id,
                    field="parent",
                    message=f"loop {loop_id!r} has no body: give the nodes it runs per item "
                    f"parent: {loop_id!r}",
                )
            )
    for node_id in specs:
        if "[" in node_id:
            issues.append(
                ValidationIssue(
                    node_id=node_id,
                    field="id",
                    message="in a workflow with a loop, node ids cannot contain '[' (per-item "
                    "node states are named like 'node[3]')",
                )
            )
    return issues


def crossing_message(source: str, target: str, scope_of: Mapping[str, Scope]) -> str | None:
    """Why edge source -> target is refused (it leaves or enters a loop body), or None."""
    source_scope, target_scope = scope_of[source], scope_of[target]
    if source_scope == target_scope:
        return None
    loop = source_scope if source_scope is not None else target_scope
    return (
        f"edge {source} -> {target} crosses the boundary of loop {loop!r}'s body: edges "
        "connect nodes of the same body (or two nodes outside any loop); connect the loop "
        "node itself to the outside, and read outer outputs with outputs.<id>"
    )


def reader_in_scope(reader: str, scope: Scope, scope_of: Mapping[str, Scope]) -> str | None:
    """The node standing for `reader` in `scope`: itself when it is in `scope`, else the
    loop of `scope` that (transitively) contains it; None when `scope` does not enclose
    `reader` (a body it is not in)."""
    current: str | None = reader
    while current is not None and scope_of[current] != scope:
        current = scope_of[current]
    return current
