"""The error a `code` call fails with (a leaf: the node and the pool both import it)."""

from __future__ import annotations

from ductwork.nodes.base import NodeError


class CodeError(NodeError):
    """The code failed in its worker; `stdout` is what it printed before it failed."""

    def __init__(self, message: str, stdout: str = "") -> None:
        super().__init__(message)
        self.stdout = stdout
