"""Which node outputs a template or expression reads: `outputs.<id>` and `outputs['<id>']`.

Read from Jinja's syntax tree (never by pattern matching the text), so
`'outputs.x'` inside a string literal is not a reference and
`outputs['my-node']` is. Access the tree cannot resolve (`outputs[name]`,
`outputs | attr(x)`, the whole `outputs` mapping) is allowed: it can only be
checked when the node runs. The walk is iterative, so a deeply nested
template cannot exhaust the interpreter's stack here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from jinja2 import TemplateError
from jinja2 import nodes as jinja_nodes

from ductwork.engine.templating import ENV

OUTPUTS = "outputs"

MAPPING_METHODS = frozenset({"get", "items", "keys", "values"})
"""`outputs.items()` and friends read the mapping itself (the sandbox resolves a
missing key to the dict method), so they name no node unless a node has that id."""


@dataclass(frozen=True, slots=True)
class OutputReference:
    """A node id read through `outputs`, with the spelling used (for messages)."""

    node_id: str
    written: str


def _is_outputs(node: jinja_nodes.Node) -> bool:
    return isinstance(node, jinja_nodes.Name) and node.name == OUTPUTS and node.ctx == "load"


def _reference(node: jinja_nodes.Node) -> OutputReference | None:
    if isinstance(node, jinja_nodes.Getattr) and _is_outputs(node.node):
        return OutputReference(node.attr, f"{OUTPUTS}.{node.attr}")
    if isinstance(node, jinja_nodes.Getitem) and _is_outputs(node.node):
        key = node.arg
        if isinstance(key, jinja_nodes.Const) and isinstance(key.value, str):
            name = key.value
            written = f"{OUTPUTS}.{name}" if name.isidentifier() else f"{OUTPUTS}[{name!r}]"
            return OutputReference(name, written)
    return None


def _references_in(tree: jinja_nodes.Node) -> tuple[OutputReference, ...]:
    found: dict[OutputReference, None] = {}
    pending: list[jinja_nodes.Node] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, jinja_nodes.Name) and node.name == OUTPUTS and node.ctx != "load":
            # `{% set outputs = ... %}`, a loop or macro argument named outputs: the
            # name no longer means the run's outputs, so nothing here can be checked.
            return ()
        reference = _reference(node)
        if reference is not None:
            found[reference] = None
        children = list(node.iter_child_nodes())
        pending.extend(reversed(children))  # source order, for stable messages
    return tuple(found)


@lru_cache(maxsize=4096)
def template_references(source: str) -> tuple[OutputReference, ...]:
    """Node outputs a `{{ }}` template reads (none when it does not parse); cached by source."""
    try:
        return _references_in(ENV.parse(source))
    except TemplateError:
        return ()


def expression_references(source: str) -> tuple[OutputReference, ...]:
    """Node outputs a bare expression (`outputs.score.value > 0.5`) reads."""
    # The expression already compiled on its own, so wrapping it cannot change its meaning.
    return template_references("{{ (" + source + ") }}")
