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
    depth: int = 0
    budget_checks: list[float] = field(default_factory=list)
    """The estimates `check_budget` was called with, in order."""
    budget_left: float | None = None
    """When set, `check_budget` refuses an estimate above it."""

    @property
    def idempotency_key(self) -> str:
        return f"{self.execution_id}:{self.node_id}"

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append((level, message))

    def emit_token(self, text: str) -> None:
        self.tokens.append(text)

    def redact(self, value: Any) -> Any:
        return value

    async def check_budget(self, estimated_cost: float) -> None:
        self.budget_checks.append(estimated_cost)
        if self.budget_left is not None and estimated_cost > self.budget_left:
            raise NodeError(f"budget: {estimated_cost} is more than the {self.budget_left} left")

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
