"""What a template or expression reads: node outputs (`outputs.<id>`, `outputs['<id>']`) and
credentials (`secrets.NAME`, `secrets['NAME']`, plus a node's `credential: NAME`).

Read from Jinja's syntax tree (never by pattern matching the text), so
`'outputs.x'` inside a string literal is not a reference and
`outputs['my-node']` is. Access the tree cannot resolve (`outputs[name]`,
`outputs | attr(x)`, the whole `outputs` mapping) is allowed: it can only be
checked when the node runs. Secrets are stricter: a run loads only the
credentials its workflow names, so `secrets[var]` or the whole `secrets`
mapping is a validation problem (`DYNAMIC_SECRETS_MESSAGE`). The walk is
iterative, so a deeply nested template cannot exhaust the interpreter's stack
here.
"""

from __future__ import annotations

from collections.abc import Mapping
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


# Secrets ---------------------------------------------------------------------------------

SECRETS = "secrets"
CREDENTIAL_FIELD = "credential"
"""The node config field naming a credential (email, webhook, data-source, ai-processor)."""

DYNAMIC_SECRETS_MESSAGE = "secrets must be read by name: secrets.NAME"
"""The validation issue for `secrets[var]`, `secrets | attr(x)` or the whole mapping: a run
loads only the credentials its workflow names, so a name the template computes cannot work."""


@dataclass(frozen=True, slots=True)
class SecretScan:
    """What a template or expression reads from `secrets`."""

    names: tuple[str, ...]
    dynamic: bool
    """True when it reads `secrets` other than by a literal name."""


def _is_secrets(node: jinja_nodes.Node) -> bool:
    return isinstance(node, jinja_nodes.Name) and node.name == SECRETS


def _secret_name(node: jinja_nodes.Node) -> str | None:
    """The name a `secrets.NAME` / `secrets['NAME']` node reads; None for anything else."""
    if isinstance(node, jinja_nodes.Getattr) and _is_secrets(node.node):
        # `secrets.items` is the dict method in Jinja (attribute first), not a credential.
        return None if node.attr in MAPPING_METHODS else node.attr
    if isinstance(node, jinja_nodes.Getitem) and _is_secrets(node.node):
        key = node.arg
        if isinstance(key, jinja_nodes.Const) and isinstance(key.value, str):
            return key.value
    return None


def _scan_secrets(tree: jinja_nodes.Node) -> SecretScan:
    found: dict[str, None] = {}
    dynamic = False
    pending: list[jinja_nodes.Node] = [tree]
    while pending:
        node = pending.pop()
        name = _secret_name(node)
        if name is not None:
            found[name] = None
            # The `secrets` Name under it is accounted for; a Getitem's key is a Const.
            continue
        if _is_secrets(node):
            # Anything else that touches the name: `secrets[var]`, `secrets | attr(x)`,
            # `{{ secrets }}`, `secrets.items()`, `{% set secrets = ... %}`.
            dynamic = True
            continue
        children = list(node.iter_child_nodes())
        pending.extend(reversed(children))
    return SecretScan(tuple(found), dynamic)


@lru_cache(maxsize=4096)
def scan_template_secrets(source: str) -> SecretScan:
    """What a `{{ }}` template reads from `secrets` (nothing when it does not parse); cached."""
    try:
        return _scan_secrets(ENV.parse(source))
    except (TemplateError, RecursionError):
        return SecretScan((), False)


def scan_expression_secrets(source: str) -> SecretScan:
    """What a bare expression reads from `secrets`."""
    return scan_template_secrets("{{ (" + source + ") }}")


def secret_references(source: str) -> tuple[str, ...]:
    """Names a template reads as `secrets.NAME` or `secrets['NAME']`, in source order (cached)."""
    return scan_template_secrets(source).names


@dataclass(frozen=True, slots=True)
class CredentialUse:
    """One credential a node refers to, and where (`config.headers.Authorization`)."""

    name: str
    field: str
    via_secrets: bool
    """True for `secrets.NAME` in a template; False for the `credential` field."""


def _config_strings(config: Mapping[str, Any]) -> list[tuple[tuple[str | int, ...], str]]:
    """(key path, string) for every string in a config; iterative, bounded by the config."""
    leaves: list[tuple[tuple[str | int, ...], str]] = []
    pending: list[tuple[tuple[str | int, ...], Any]] = [((k,), v) for k, v in config.items()]
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            leaves.append((path, value))
        elif isinstance(value, dict):
            pending.extend(((*path, key), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, index), item) for index, item in enumerate(value))
    return leaves


def _field_name(path: tuple[str | int, ...]) -> str:
    text = "config"
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def node_credential_uses(
    config: Mapping[str, Any],
    expression_fields: frozenset[str],
    raw_fields: frozenset[str] = frozenset(),
) -> tuple[CredentialUse, ...]:
    """Every credential one node's config refers to (`secrets.X` anywhere but in
    `raw_fields`, `credential: X`)."""
    uses: dict[tuple[str, bool], CredentialUse] = {}
    credential = config.get(CREDENTIAL_FIELD)
    if isinstance(credential, str) and credential:
        uses[(credential, False)] = CredentialUse(credential, "config.credential", False)
    for path, text in _config_strings(config):
        if SECRETS not in text or path[0] in raw_fields:
            continue  # the cheap test first: most strings never mention it
        if path[0] in expression_fields:
            scan = scan_expression_secrets(text)
        elif has_template_syntax(text):
            scan = scan_template_secrets(text)
        else:
            continue
        for name in scan.names:
            uses.setdefault((name, True), CredentialUse(name, _field_name(path), True))
    return tuple(uses.values())


def credential_names(
    definition: WorkflowDefinition, registry: Mapping[str, NodeType[Any]]
) -> set[str]:
    """All credential names a workflow refers to: `secrets.X` in any template or expression
    field of any node, plus every node's `config.credential`.

    Nodes of unknown types are read as if every field held templates.
    """
    names: set[str] = set()
    for spec in definition.nodes:
        node_type = registry.get(spec.type)
        fields = node_type.expression_fields_for(spec.config) if node_type else frozenset()
        raw = node_type.raw_fields if node_type else frozenset()
        names.update(use.name for use in node_credential_uses(spec.config, fields, raw))
    return names
