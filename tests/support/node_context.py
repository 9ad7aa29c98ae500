"""A minimal `NodeContext` for testing a node type on its own, outside the executor."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ductwork.nodes.base import ItemOutcome, NodeError, NodeServices
from ductwork.security.credential_types import Credential


@dataclass
class FakeNodeContext:
    services: NodeServices
    input: Any = None
    names: Mapping[str, Any] = field(default_factory=dict)
    execution_id: str = "exec-test"
    workflow_id: str = "wf-test"
    node_id: str = "node-test"
    attempt: int = 1
    logs: list[tuple[str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    credentials: dict[str, Credential] = field(default_factory=dict)

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.node_id}"

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append((level, message))

    def emit_token(self, text: str) -> None:
        self.tokens.append(text)

    def credential(
        self, name: str, types: Collection[str], field: str = "config.credential"
    ) -> Credential:
        found = self.credentials.get(name)
        if found is None:
            raise NodeError(f"{field}: no credential named {name!r}")
        if found.type not in types:
            raise NodeError(f"{field}: credential {name!r} is of type {found.type!r}")
        return found

    async def run_items(
        self, items: Sequence[Any], *, concurrency: int, stop_on_error: bool
    ) -> list[ItemOutcome]:
        raise NodeError("no loop body outside the executor")
