"""Workflow versions: the summary a versions list shows, and the diff of two versions.

Pure functions over `WorkflowDefinition`s (no I/O): the API and the CLI show what
they return. Every save stores a version (`Store.get_workflow_version`); a restore
saves an old definition again as a new version, so history is never rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from ductwork.models import WorkflowDefinition


@dataclass(frozen=True, slots=True)
class WorkflowVersionInfo:
    """One saved version of a workflow, without its definition."""

    version: int
    created_at: datetime
    """When this version was saved."""
    name: str
    node_count: int
    edge_count: int


def version_info(
    version: int, created_at: datetime, definition: Mapping[str, Any]
) -> WorkflowVersionInfo:
    """The summary of a stored definition (its dumped JSON form, not re-validated:
    a list of versions must not fail on one that today's rules would refuse)."""
    nodes = definition.get("nodes")
    edges = definition.get("edges")
    return WorkflowVersionInfo(
        version=version,
        created_at=created_at,
        name=str(definition.get("name", "")),
        node_count=len(nodes) if isinstance(nodes, list) else 0,
        edge_count=len(edges) if isinstance(edges, list) else 0,
    )


# Functional syntax: `from` is a keyword. A key absent on one side shows as null there.
Change = TypedDict("Change", {"path": str, "from": Any, "to": Any})
"""One value that differs: its dotted path, the old and the new value."""


class NodeChange(TypedDict):
    """A node present in both versions whose fields differ."""

    id: str
    changes: list[Change]


def _changes(old: Any, new: Any, path: str) -> list[Change]:
    """Differences between two JSON values, per key of nested objects.

    Lists and scalars compare whole: a list's items have no stable identity here
    (nodes and edges, which do, are diffed by id before this is used).
    """
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found: list[Change] = []
        for key in [*old.keys(), *(k for k in new if k not in old)]:
            sub = f"{path}.{key}" if path else str(key)
            found.extend(_changes(old.get(key), new.get(key), sub))
        return found
    if _same(old, new):
        return []
    return [{"path": path, "from": old, "to": new}]


def _same(old: Any, new: Any) -> bool:
    """Equal as JSON: unlike `==`, 1 and 1.0 or 0 and false differ (a user changed them)."""
    if type(old) is not type(new):
        return False
    if isinstance(old, Mapping):
        return old.keys() == new.keys() and all(_same(old[key], new[key]) for key in old)
    if isinstance(old, list):
        return len(old) == len(new) and all(map(_same, old, new))
    return bool(old == new)


def _edge_key(edge: Mapping[str, Any]) -> tuple[str, str, str | None]:
    branch = edge.get("branch")
    return (str(edge["from"]), str(edge["to"]), None if branch is None else str(branch))


def _edge_view(key: tuple[str, str, str | None]) -> dict[str, Any]:
    return {"from": key[0], "to": key[1], "branch": key[2]}


def diff_definitions(
    old: WorkflowDefinition, new: WorkflowDefinition, *, from_version: int, to_version: int
) -> dict[str, Any]:
    """What changed from `old` to `new`: nodes by id, edges by (from, to, branch), and the
    workflow's other fields by path.

    Shape: `{"from", "to", "nodes": {"added": [ids], "removed": [ids], "changed":
    [{"id", "changes": [{"path", "from", "to"}]}]}, "edges": {"added": [...],
    "removed": [...]}, "workflow": [{"path", "from", "to"}]}`. Node change paths are
    relative to the node (`config.prompt`, `position.x`); ids keep the order of the
    definition they come from. An edge's id or React Flow spelling is not a change.
    """
    old_data, new_data = old.dump(), new.dump()
    old_nodes = {node["id"]: node for node in old_data.pop("nodes")}
    new_nodes = {node["id"]: node for node in new_data.pop("nodes")}
    changed: list[NodeChange] = []
    for node_id, node in new_nodes.items():
        if node_id in old_nodes:
            changes = _changes(old_nodes[node_id], node, "")
            if changes:
                changed.append({"id": node_id, "changes": changes})
    old_edges = list(dict.fromkeys(_edge_key(edge) for edge in old_data.pop("edges")))
    new_edges = list(dict.fromkeys(_edge_key(edge) for edge in new_data.pop("edges")))
    old_edge_set, new_edge_set = set(old_edges), set(new_edges)
    return {
        "from": from_version,
        "to": to_version,
        "nodes": {
            "added": [node_id for node_id in new_nodes if node_id not in old_nodes],
            "removed": [node_id for node_id in old_nodes if node_id not in new_nodes],
            "changed": changed,
        },
        "edges": {
            "added": [_edge_view(key) for key in new_edges if key not in old_edge_set],
            "removed": [_edge_view(key) for key in old_edges if key not in new_edge_set],
        },
        "workflow": _changes(old_data, new_data, ""),
    }
