"""Validate a workflow definition and turn it into an execution plan.

`build_plan` does every check DESIGN.md lists and compiles every template and
expression once; the executor caches plans per (workflow id, version).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from pydantic import ValidationError

from ductwork.engine.bodies import (
    Scope,
    crossing_message,
    loop_issues,
    node_scopes,
    reader_in_scope,
)
from ductwork.engine.limits import UNLIMITED, WorkflowLimits, number, over
from ductwork.engine.references import (
    CREDENTIAL_FIELD,
    DYNAMIC_SECRETS_MESSAGE,
    MAPPING_METHODS,
    SECRETS,
    OutputReference,
    expression_references,
    scan_expression_secrets,
    scan_template_secrets,
    template_references,
)
from ductwork.engine.templating import (
    Template,
    TemplateFailure,
    compile_expression,
    compile_template,
    has_template_syntax,
)
from ductwork.models import EdgeSpec, NodeSpec, ValidationIssue, WorkflowDefinition
from ductwork.nodes.base import NodeConfig, NodeType

ERROR_BRANCH = "error"


class WorkflowInvalid(Exception):
    """The definition has problems; `issues` lists each with node and field."""

    def __init__(self, issues: list[ValidationIssue]) -> None:
        self.issues = issues
        summary = "; ".join(
            f"{issue.node_id or '-'}.{issue.field or '-'}: {issue.message}" for issue in issues[:5]
        )
        super().__init__(f"workflow is invalid: {summary}")


ConfigPath = tuple[str | int, ...]
"""Where a value sits in a node's config: keys and list indexes, e.g. `("body", "items", 0)`."""


@dataclass(frozen=True, slots=True)
class ConfigTemplate:
    """A templated string inside a node's config, located by its key path."""

    path: ConfigPath
    template: Template


@dataclass(frozen=True, slots=True)
class NodePlan:
    """A node ready to run: its type, validated config and compiled templates.

    `config` is the validated config of a node without templates (the executor
    uses it as is). A node with templates is rendered and validated again before
    each run; when one of its templates sits in a field that is not a string
    (`delay_seconds: "{{ wait }}"`), `config` holds the values as written.
    """

    spec: NodeSpec
    node_type: NodeType[Any]
    config: NodeConfig
    templates: tuple[ConfigTemplate, ...]
    incoming: tuple[EdgeSpec, ...]
    outgoing: tuple[EdgeSpec, ...]

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def predecessors(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(edge.source for edge in self.incoming))


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated workflow: nodes in topological order."""

    nodes: Mapping[str, NodePlan]
    order: tuple[str, ...]
    entries: tuple[str, ...]
    bodies: Mapping[str, Plan] = dataclass_field(default_factory=dict)
    """Per node with a body (`loop`), the plan of that body: its own nodes, edges and
    nested bodies. Body nodes are in no other plan."""
    sinks: tuple[str, ...] = ()
    """The nodes without outgoing edges (a body's item result is theirs)."""

    def walk(self) -> Iterator[NodePlan]:
        """Every node of the plan and of its bodies, nested ones included."""
        pending: list[Plan] = [self]
        while pending:
            plan = pending.pop()
            yield from plan.nodes.values()
            pending.extend(plan.bodies.values())


def _dotted(path: ConfigPath) -> str:
    """`("headers", "X-Id")` -> `headers.X-Id`, `("to", 0)` -> `to[0]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


MAX_CONFIG_DEPTH = 64
"""Deepest nesting of objects and lists in a node's config. JSON encoders and
stores have limits of their own (orjson 255 levels, MongoDB 100 for a whole
document that holds the config several levels down); past them saving a
workflow failed with a 500 instead of naming the node."""


class _TooDeep(Exception):
    def __init__(self, path: ConfigPath) -> None:
        self.path = path


def _string_leaves(config: Mapping[str, Any]) -> list[tuple[ConfigPath, str]]:
    """(key path, string) for every string in a config, in document order.

    Iterative, so a deeply nested config cannot exhaust the interpreter's stack;
    raises _TooDeep past MAX_CONFIG_DEPTH.
    """
    leaves: list[tuple[ConfigPath, str]] = []
    pending: list[tuple[ConfigPath, Any]] = [((key,), value) for key, value in config.items()]
    pending.reverse()
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            leaves.append((path, value))
        elif len(path) >= MAX_CONFIG_DEPTH and isinstance(value, dict | list):
            raise _TooDeep(path)
        elif isinstance(value, dict):
            pending.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            items = list(enumerate(value))
            pending.extend(((*path, index), item) for index, item in reversed(items))
    return leaves


@dataclass(slots=True)
class _CheckedNode:
    node_type: NodeType[Any]
    config: NodeConfig
    templates: tuple[ConfigTemplate, ...]


def _validate_model(
    spec: NodeSpec,
    node_type: NodeType[Any],
    templated: set[ConfigPath],
    issues: list[ValidationIssue],
) -> tuple[NodeConfig | None, set[ConfigPath]]:
    """The config checked by its model, and the templated paths it can only check after rendering.

    A template in a field whose type is not a string (`delay_seconds: "{{ wait }}"`)
    fails the model now; such a field is validated when the node runs, after
    rendering (the executor validates the rendered config with the same model).
    """
    try:
        return node_type.config_model.model_validate(spec.config), set()
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    rendered_later: set[ConfigPath] = set()
    problems = 0
    for error in errors:
        location = tuple(error["loc"])
        template_path = next((path for path in templated if location[: len(path)] == path), None)
        # An unknown key stays an error whatever its value (typos are caught at save time).
        if template_path is not None and error["type"] != "extra_forbidden":
            rendered_later.add(template_path)
            continue
        problems += 1
        dotted = _dotted(location)
        issues.append(
            ValidationIssue(
                node_id=spec.id,
                field=f"config.{dotted}" if dotted else "config",
                message=error["msg"],
            )
        )
    if problems:
        return None, rendered_later
    # Every remaining problem is a template the executor renders and validates before
    # `run`; until then the plan holds the config as written.
    return node_type.config_model.model_construct(**spec.config), rendered_later


SECRET_FREE_MESSAGE = (
    "must not read secrets: this value is stored where the run's secrets are not masked "
    "(pass the called workflow the credential's name, or let it read its own secrets)"
)
"""Why a template in one of a node type's `secret_free_fields` may not read `secrets`."""


def _check_config(
    spec: NodeSpec,
    node_type: NodeType[Any],
    issues: list[ValidationIssue],
    references: list[tuple[ConfigPath, OutputReference]],
    limits: WorkflowLimits = UNLIMITED,
) -> _CheckedNode | None:
    """Compile the config's templates and expressions, collect the outputs they read,
    validate the config with its model and check it against `limits`."""
    try:
        leaves = _string_leaves(spec.config)
    except _TooDeep as exc:
        issues.append(
            ValidationIssue(
                node_id=spec.id,
                field=f"config.{_dotted(exc.path[:1])}",
                message=f"nested more than {MAX_CONFIG_DEPTH} levels deep",
            )
        )
        return None
    if node_type.raw_fields:
        leaves = [leaf for leaf in leaves if leaf[0][0] not in node_type.raw_fields]
    expression_fields = node_type.expression_fields_for(spec.config)
    html_fields = node_type.html_fields_for(spec.config)
    expressions = {path for path, _ in leaves if path[0] in expression_fields}
    templated = {
        path for path, text in leaves if path not in expressions and has_template_syntax(text)
    }
    config, rendered_later = _validate_model(spec, node_type, templated, issues)
    templates: list[ConfigTemplate] = []
    max_chars = limits.max_template_chars
    for path, text in leaves:
        if path not in expressions and path not in templated:
            continue
        if path == (CREDENTIAL_FIELD,):
            # The credentials a run loads are known before it starts, from the names.
            issues.append(
                ValidationIssue(
                    node_id=spec.id,
                    field=f"config.{CREDENTIAL_FIELD}",
                    message="must be a credential's name, not a template",
                )
            )
            continue
        if max_chars is not None and len(text) > max_chars:
            # Not compiled: compiling is linear at best, and the cache keeps what it compiles.
            what = "expression" if path in expressions else "template"
            issues.append(
                ValidationIssue(
                    node_id=spec.id,
                    field=f"config.{_dotted(path)}",
                    message=f"{what} is {len(text):,} characters; the limit is {max_chars:,} "
                    "(DUCTWORK_MAX_TEMPLATE_CHARS)",
                )
            )
            continue
        try:
            if path in expressions:
                compile_expression(text)
                found = expression_references(text)
            else:
                # A lone `{{ expr }}` in a field that is not a string keeps its value's type.
                native = path[0] in node_type.native_fields or path in rendered_later
                template = compile_template(text, native, autoescape=path[0] in html_fields)
                templates.append(ConfigTemplate(path, template))
                found = template_references(text)
        except TemplateFailure as exc:
            message = str(exc)
        except RecursionError:
            # Jinja's parser recurses once per nesting level.
            message = "nested too deeply to compile"
        else:
            references.extend((path, reference) for reference in found)
            if SECRETS not in text:
                continue
            scan = (
                scan_expression_secrets(text)
                if path in expressions
                else scan_template_secrets(text)
            )
            if scan.dynamic:
                message = DYNAMIC_SECRETS_MESSAGE
            elif scan.names and path[0] in node_type.secret_free_fields:
                message = SECRET_FREE_MESSAGE
            else:
                continue
        issues.append(
            ValidationIssue(node_id=spec.id, field=f"config.{_dotted(path)}", message=message)
        )
    if config is None:
        return None
    rendered_at_run = frozenset(str(path[0]) for path in templated)
    for field, message in node_type.limit_issues(config, limits, rendered_at_run):
        issues.append(ValidationIssue(node_id=spec.id, field=f"config.{field}", message=message))
    return _CheckedNode(node_type, config, tuple(templates))


def _retry_issues(spec: NodeSpec, limits: WorkflowLimits) -> list[ValidationIssue]:
    """A node's retry policy past DUCTWORK_MAX_RETRY_ATTEMPTS or the backoff ceiling."""
    retry = spec.retry
    if retry is None:
        return []
    issues = []
    attempts = limits.max_retry_attempts
    if attempts is not None and retry.max_attempts > attempts:
        issues.append(
            ValidationIssue(
                node_id=spec.id,
                field="retry.max_attempts",
                message=over(
                    "max_attempts", retry.max_attempts, attempts, "DUCTWORK_MAX_RETRY_ATTEMPTS"
                ),
            )
        )
    ceiling = limits.max_retry_backoff_seconds
    if ceiling is not None and retry.max_attempts > 1:
        if retry.backoff_seconds > ceiling:
            issues.append(
                ValidationIssue(
                    node_id=spec.id,
                    field="retry.backoff_seconds",
                    message=over(
                        "backoff_seconds",
                        retry.backoff_seconds,
                        ceiling,
                        "DUCTWORK_MAX_RETRY_BACKOFF_SECONDS",
                    ),
                )
            )
        else:
            # The longest wait the policy can ask for (jitter only ever shortens it).
            longest = retry.delay_before(retry.max_attempts, lambda: 0.0)
            if longest > ceiling:
                issues.append(
                    ValidationIssue(
                        node_id=spec.id,
                        field="retry.max_backoff_seconds",
                        message=f"retries would wait up to {number(longest)} s between attempts; "
                        f"the limit is {number(ceiling)} (DUCTWORK_MAX_RETRY_BACKOFF_SECONDS): "
                        "lower max_backoff_seconds, backoff_factor or max_attempts",
                    )
                )
    return issues


def _size_issues(definition: WorkflowDefinition, limits: WorkflowLimits) -> list[ValidationIssue]:
    """Too many nodes or edges: reported alone, before any per-node work is spent."""
    issues = []
    if limits.max_nodes is not None and len(definition.nodes) > limits.max_nodes:
        issues.append(
            ValidationIssue(
                field="nodes",
                message=f"{len(definition.nodes):,} nodes; the limit is {limits.max_nodes:,} "
                "(DUCTWORK_MAX_WORKFLOW_NODES)",
            )
        )
    if limits.max_edges is not None and len(definition.edges) > limits.max_edges:
        issues.append(
            ValidationIssue(
                field="edges",
                message=f"{len(definition.edges):,} edges; the limit is {limits.max_edges:,} "
                "(DUCTWORK_MAX_WORKFLOW_EDGES)",
            )
        )
    return issues


def _topological_order(
    node_ids: Iterable[str], predecessors: Mapping[str, Iterable[str]]
) -> tuple[tuple[str, ...], None] | tuple[None, list[str]]:
    """(order, None) for an acyclic graph; (None, the first cycle found) otherwise.

    `graphlib` is iterative (no recursion limit) and names the cycle in edge
    direction, first node repeated last: `[a, b, a]`.
    """
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for node_id in node_ids:
        sorter.add(node_id)  # first, so ties keep the definition's order
    for node_id, sources in predecessors.items():
        sorter.add(node_id, *sources)
    try:
        return tuple(sorter.static_order()), None
    except graphlib.CycleError as exc:
        return None, list(exc.args[1])


CYCLE_ENDS_SHOWN = 10
"""A long cycle is named by this many nodes at each end (a 10,000-node loop
would otherwise make a 100 KB message)."""


def _name_cycle(cycle: Sequence[str]) -> str:
    """`cycle: a -> b -> a`; the middle of a long one abbreviated."""
    if len(cycle) <= 2 * CYCLE_ENDS_SHOWN + 1:
        return "cycle: " + " -> ".join(cycle)
    hidden = len(cycle) - 2 * CYCLE_ENDS_SHOWN
    head = " -> ".join(cycle[:CYCLE_ENDS_SHOWN])
    tail = " -> ".join(cycle[-CYCLE_ENDS_SHOWN:])
    return f"cycle: {head} -> ... ({hidden} more) ... -> {tail}"


def _not_upstream(
    pairs: Iterable[tuple[str, str]],
    order: Sequence[str],
    predecessors: Mapping[str, Sequence[str]],
) -> set[tuple[str, str]]:
    """The (source, reader) pairs where no path of edges leads from source to reader.

    Most pairs are decided by topological position or a direct edge. The rest
    share one pass over the graph carrying, per node, a bit set (a Python int)
    of the questioned sources upstream of it: linear in the graph times the
    number of distinct questioned sources, never quadratic in the graph alone.
    """
    position = {node_id: index for index, node_id in enumerate(order)}
    failing: set[tuple[str, str]] = set()
    undecided: list[tuple[str, str]] = []
    for source, reader in pairs:
        if position[source] >= position[reader]:
            failing.add((source, reader))
        elif source not in predecessors[reader]:
            undecided.append((source, reader))
    if not undecided:
        return failing
    sources = dict.fromkeys(source for source, _ in undecided)
    bit = {source: 1 << index for index, source in enumerate(sources)}
    last = max(position[reader] for _, reader in undecided)
    upstream: dict[str, int] = {}
    for node_id in order[: last + 1]:
        seen = 0
        for pred in predecessors[node_id]:
            seen |= upstream[pred] | bit.get(pred, 0)
        upstream[node_id] = seen
    failing.update(pair for pair in undecided if not upstream[pair[1]] & bit[pair[0]])
    return failing


def _reference_issues(
    references: Mapping[str, list[tuple[ConfigPath, OutputReference]]],
    specs: Mapping[str, NodeSpec],
    order: Sequence[str] | None,
    predecessors: Mapping[str, Sequence[str]],
    scope_of: Mapping[str, Scope],
) -> list[ValidationIssue]:
    """`outputs.<id>` must name a node of the workflow upstream of the reader.

    A node in a loop body may read its own body's nodes and those of every enclosing
    graph; for the latter, its loop (the one in the source's graph) stands for it in
    the upstream check. With a cycle there is no order to judge by; then only unknown
    ids are reported.
    """
    stand_in: dict[tuple[str, str], str | None] = {}
    for reader, found in references.items():
        for _, reference in found:
            source = reference.node_id
            if source in specs and source != reader:
                stand_in[(source, reader)] = reader_in_scope(reader, scope_of[source], scope_of)
    pairs = {
        (source, rep) for (source, _), rep in stand_in.items() if rep is not None and rep != source
    }
    late = _not_upstream(pairs, order, predecessors) if order is not None else set()
    issues = []
    for reader, found in references.items():
        for path, reference in found:
            source = reference.node_id
            if source not in specs:
                if source in MAPPING_METHODS:
                    continue  # `outputs.items()`: the mapping itself
                message = f"no node {source!r} in this workflow"
            elif source == reader:
                message = "a node cannot read its own output"
            elif (rep := stand_in[(source, reader)]) is None:
                message = (
                    f"node {source!r} is in the body of loop {scope_of[source]!r}, which "
                    f"{reader!r} is not in: read the loop's output instead"
                )
            elif rep == source:
                message = (
                    f"{reader!r} is in the body of loop {source!r}: it cannot read the "
                    "loop's output (use item, index and loop)"
                )
            elif (source, rep) in late:
                message = (
                    f"node {source!r} does not run before {reader!r}: it is not upstream of "
                    f"{rep!r} (add edges so a path leads from {source!r} to {rep!r})"
                )
            else:
                continue
            issues.append(
                ValidationIssue(
                    node_id=reader,
                    field=f"config.{_dotted(path)}",
                    message=f"{reference.written}: {message}",
                )
            )
    return issues


def build_plan(
    definition: WorkflowDefinition,
    registry: Mapping[str, NodeType[Any]],
    limits: WorkflowLimits = UNLIMITED,
) -> Plan:
    """Check everything and compile templates; raises WorkflowInvalid listing every problem.

    Linear in the size of the definition (every graph walk is iterative), so a
    10,000-node workflow validates like a 10-node one, only longer. `limits`:
    the ceilings the service is configured with (none by default).
    """
    too_large = _size_issues(definition, limits)
    if too_large:
        raise WorkflowInvalid(too_large)
    issues: list[ValidationIssue] = []
    if not definition.nodes:
        issues.append(ValidationIssue(field="nodes", message="a workflow needs at least one node"))

    specs: dict[str, NodeSpec] = {}
    for index, spec in enumerate(definition.nodes):
        if spec.id in specs:
            issues.append(
                ValidationIssue(
                    node_id=spec.id, field=f"nodes[{index}].id", message="duplicate node id"
                )
            )
        else:
            specs[spec.id] = spec

    scope_of, scope_issues = node_scopes(specs, registry)
    issues.extend(scope_issues)
    issues.extend(loop_issues(specs, registry, scope_of))
    checked: dict[str, _CheckedNode] = {}
    references: dict[str, list[tuple[ConfigPath, OutputReference]]] = {}
    for spec in specs.values():
        node_type = registry.get(spec.type)
        if node_type is None:
            known = ", ".join(sorted(registry))
            issues.append(
                ValidationIssue(
                    node_id=spec.id,
                    field="type",
                    message=f"unknown node type {spec.type!r}; known types: {known}",
                )
            )
            continue
        found = references[spec.id] = []
        issues.extend(_retry_issues(spec, limits))
        node = _check_config(spec, node_type, issues, found, limits)
        if node is not None:
            checked[spec.id] = node

    incoming: dict[str, list[EdgeSpec]] = {node_id: [] for node_id in specs}
    outgoing: dict[str, list[EdgeSpec]] = {node_id: [] for node_id in specs}
    seen_edges: set[tuple[str, str, str | None]] = set()
    for index, edge in enumerate(definition.edges):
        bad = False
        for end, node_id in (("from", edge.source), ("to", edge.target)):
            if node_id not in specs:
                issues.append(
                    ValidationIssue(
                        node_id=node_id,
                        field=f"edges[{index}].{end}",
                        message=f"edge refers to unknown node {node_id!r}",
                    )
                )
                bad = True
        if bad:
            continue
        if edge.source == edge.target:
            issues.append(
                ValidationIssue(
                    node_id=edge.source,
                    field=f"edges[{index}]",
                    message=f"cycle: {edge.source} -> {edge.source}",
                )
            )
            continue
        crossing = crossing_message(edge.source, edge.target, scope_of)
        if crossing is not None:
            issues.append(
                ValidationIssue(node_id=edge.source, field=f"edges[{index}]", message=crossing)
            )
            continue
        key = (edge.source, edge.target, edge.branch)
        if key in seen_edges:
            continue  # a duplicated edge means the same thing twice
        seen_edges.add(key)
        source_spec = specs[edge.source]
        if edge.branch is not None and edge.source in checked:
            node_type = checked[edge.source].node_type
            allowed = set(node_type.branches)
            if edge.branch == ERROR_BRANCH:
                if source_spec.on_error != "branch":
                    issues.append(
                        ValidationIssue(
                            node_id=edge.source,
                            field=f"edges[{index}].branch",
                            message=(
                                "an 'error' edge needs on_error: 'branch' on its source node "
                                f"(it is {source_spec.on_error!r})"
                            ),
                        )
                    )
            elif edge.branch not in allowed:
                can = ", ".join(sorted(allowed | {ERROR_BRANCH})) or ERROR_BRANCH
                issues.append(
                    ValidationIssue(
                        node_id=edge.source,
                        field=f"edges[{index}].branch",
                        message=(
                            f"a {source_spec.type} node cannot take branch {edge.branch!r}; "
                            f"it can take: {can}"
                        ),
                    )
                )
        outgoing[edge.source].append(edge)
        incoming[edge.target].append(edge)

    predecessors = {
        node_id: tuple(dict.fromkeys(edge.source for edge in incoming[node_id]))
        for node_id in specs
    }
    order, cycle = _topological_order(specs, predecessors)
    if cycle:
        issues.append(ValidationIssue(node_id=cycle[0], field="edges", message=_name_cycle(cycle)))
    entries = tuple(
        node_id for node_id in specs if not incoming[node_id] and scope_of[node_id] is None
    )
    if specs and not entries and not cycle:
        issues.append(
            ValidationIssue(field="edges", message="no entry node: every node has an incoming edge")
        )
    issues.extend(_reference_issues(references, specs, order, predecessors, scope_of))
    if issues:
        raise WorkflowInvalid(issues)
    assert order is not None  # no cycle, or it would be an issue

    nodes = {
        node_id: NodePlan(
            spec=specs[node_id],
            node_type=checked[node_id].node_type,
            config=checked[node_id].config,
            templates=checked[node_id].templates,
            incoming=tuple(incoming[node_id]),
            outgoing=tuple(outgoing[node_id]),
        )
        for node_id in order
    }
    return _scope_plan(None, nodes, order, scope_of)


def _scope_plan(
    scope: Scope,
    nodes: Mapping[str, NodePlan],
    order: Sequence[str],
    scope_of: Mapping[str, Scope],
) -> Plan:
    """The plan of one graph (the top level, or a loop's body), with its bodies."""
    members = tuple(node_id for node_id in order if scope_of[node_id] == scope)
    bodies = {
        node_id: _scope_plan(node_id, nodes, order, scope_of)
        for node_id in members
        if nodes[node_id].node_type.has_body
    }
    return Plan(
        nodes={node_id: nodes[node_id] for node_id in members},
        order=members,
        entries=tuple(node_id for node_id in members if not nodes[node_id].incoming),
        bodies=bodies,
        sinks=tuple(node_id for node_id in members if not nodes[node_id].outgoing),
    )


def validate(
    definition: WorkflowDefinition,
    registry: Mapping[str, NodeType[Any]],
    limits: WorkflowLimits = UNLIMITED,
) -> list[ValidationIssue]:
    """Every problem with a definition (empty when it is valid)."""
    try:
        build_plan(definition, registry, limits)
    except WorkflowInvalid as exc:
        return exc.issues
    return []
