"""Sandboxed worker processes for `code` nodes (docs/code-node.md)."""
