"""Every node type ductwork knows: one line each.

A node type's module (its config model, and the client it uses: the LLM, mail, HTTP
or SQL client) is imported the first time its type is asked for, not when the
registry is: a cold `ductwork run` of a start -> transformer -> end workflow loads
three of the fifteen. Listing the registry's items loads them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ductwork.nodes.base import NodeType

_NODE_TYPES: Final = (
    ("start", "ductwork.nodes.start", "StartNode"),
    ("ai-processor", "ductwork.nodes.ai_processor", "AiProcessorNode"),
    ("email", "ductwork.nodes.email", "EmailNode"),
    ("data-source", "ductwork.nodes.data_source", "DataSourceNode"),
    ("webhook", "ductwork.nodes.webhook", "WebhookNode"),
    ("end", "ductwork.nodes.end", "EndNode"),
    ("condition", "ductwork.nodes.condition", "ConditionNode"),
    ("filter", "ductwork.nodes.filter", "FilterNode"),
    ("transformer", "ductwork.nodes.transformer", "TransformerNode"),
    ("delay", "ductwork.nodes.delay", "DelayNode"),
    ("wait", "ductwork.nodes.wait", "WaitNode"),
    ("code", "ductwork.nodes.code", "CodeNode"),
    ("sub-workflow", "ductwork.nodes.subworkflow", "SubWorkflowNode"),
    ("merge", "ductwork.nodes.merge", "MergeNode"),
    ("loop", "ductwork.nodes.loop", "LoopNode"),
)
"""(type name, module, class) of each node type, in the order `GET /node-types` lists them."""


class _Registry(Mapping[str, NodeType[Any]]):
    """Node types by name; each is imported and instantiated once, on first access."""

    def __init__(self, entries: tuple[tuple[str, str, str], ...]) -> None:
        self._where = {name: (module, attr) for name, module, attr in entries}
        self._loaded: dict[str, NodeType[Any]] = {}

    def __getitem__(self, name: str) -> NodeType[Any]:
        node = self._loaded.get(name)
        if node is None:
            module, attr = self._where[name]  # KeyError: not a node type
            made: NodeType[Any] = getattr(importlib.import_module(module), attr)()
            # Two threads may race here: both get the one instance kept.
            node = self._loaded.setdefault(name, made)
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name: object) -> bool:
        return name in self._where

    def __repr__(self) -> str:
        return f"<node types: {', '.join(self._where)}>"


REGISTRY: Mapping[str, NodeType[Any]] = _Registry(_NODE_TYPES)
