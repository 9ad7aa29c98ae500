"""Which node outputs a template or expression reads: `outputs.<id>` and `outputs['<id>']`.

Read from Jinja's syntax tree (never by pattern matching the text), so
`'outputs.x'` inside a string literal is not a reference and
`outputs['my-node']` is. Access the tree cannot resolve (`outputs[name]`,
`outputs | attr(x)`, the whole `outputs` mapping) is allowed: it can only be
checked when the node runs. The walk is iterative, so a deeply nested
template cannot exhaust the interpreter's stack here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateError
from jinja2 import nodes as jinja_nodes

from ductwork.engine.templating import ENV, has_template_syntax

if TYPE_CHECKING:
    from ductwork.models import WorkflowDefinition
    from ductwork.nodes.base import NodeType

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


# Credentials -----------------------------------------------------------------------

SECRETS = "secrets"


def _secret_name(node: jinja_nodes.Node) -> str | None:
    """`secrets.NAME` or `secrets['NAME']` -> NAME."""
    if not isinstance(node, jinja_nodes.Getattr | jinja_nodes.Getitem):
        return None
    base = node.node
    if not (isinstance(base, jinja_nodes.Name) and base.name == SECRETS and base.ctx == "load"):
        return None
    if isinstance(node, jinja_nodes.Getattr):
        return node.attr
    key = node.arg
    if isinstance(key, jinja_nodes.Const) and isinstance(key.value, str):
        return key.value
    return None


@lru_cache(maxsize=4096)
def secret_references(source: str) -> tuple[str, ...]:
    """Names a `{{ }}` template reads as `secrets.NAME` / `secrets['NAME']`, in source order.

    None when it does not parse or rebinds `secrets` (`{% set secrets = ... %}`).
    """
    try:
        tree = ENV.parse(source)
    except TemplateError:
        return ()
    found: dict[str, None] = {}
    pending: list[jinja_nodes.Node] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, jinja_nodes.Name) and node.name == SECRETS and node.ctx != "load":
            return ()
        name = _secret_name(node)
        if name is not None:
            found[name] = None
        pending.extend(reversed(list(node.iter_child_nodes())))
    return tuple(found)


def expression_secret_references(source: str) -> tuple[str, ...]:
    """`secret_references` of a bare expression."""
    return secret_references("{{ (" + source + ") }}")


def _strings(value: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(key path, text) of every string in a config value; iterative."""
    pending: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            yield path, item
        elif isinstance(item, dict):
            pending.extend(((*path, key), child) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            pending.extend(
                ((*path, index), child) for index, child in reversed(list(enumerate(item)))
            )


def node_secret_references(
    config: Mapping[str, Any], expression_fields: Collection[str]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """(config path, name) of every `secrets.NAME` a node's config reads."""
    for path, text in _strings(config):
        if not path:
            continue
        if path[0] in expression_fields:
            names = expression_secret_references(text)
        elif has_template_syntax(text) and SECRETS in text:
            names = secret_references(text)
        else:
            continue
        for name in names:
            yield path, name


def credential_names(
    definition: WorkflowDefinition, registry: Mapping[str, NodeType[Any]]
) -> set[str]:
    """Every credential name a workflow refers to: `secrets.X` in any template or
    expression field, and each node's `config.credential` when it is a string."""
    names: set[str] = set()
    for spec in definition.nodes:
        credential = spec.config.get("credential")
        if isinstance(credential, str):
            names.add(credential)
        node_type = registry.get(spec.type)
        fields = node_type.expression_fields_for(spec.config) if node_type is not None else ()
        names.update(name for _, name in node_secret_references(spec.config, fields))
    return names
