"""Turn a natural-language request into a valid workflow with the configured LLM.

One use case, shared by the API (`POST /ai/workflows/generate`) and anything
else that wants it: `generate_workflow`. It

1. builds a system prompt from the node registry (the workflow format, every
   node type with its description, config JSON Schema, branch labels and
   expression fields, the template rules, and shipped examples as few-shot),
   once per process;
2. asks for structured output (`response_format` `json_schema`), falling back
   to `json_object` and then plain text when the provider answers 400/422 to
   the richer format; what works is remembered per process for each
   (base URL, model), but only once a downgraded request has succeeded, so a
   request refused for another reason (an unknown model) never disables
   structured output;
3. extracts the JSON from the answer (tolerating ```json fences and prose),
   validates it exactly as saving would (`WorkflowDefinition`, then the
   graph's checks, which include that every `outputs.<id>` a template or
   expression reads names a node upstream of the reader);
4. sends the problems back (the previous answer plus a list of
   `node / field / message`) for another round, up to `max_rounds` LLM
   answers in all, and never returns an invalid workflow.

Caching: only a first-round answer that turned out valid is written to the
LLM response cache (under `llm:cache:{sha256 of the request}`, the same
namespace and TTL as the ai-processor node), and only the first round reads
it. The first request depends only on the user's prompt, the model and the
system prompt (which changes with the node registry), so asking the same
thing twice returns the same workflow without an LLM call; invalid answers
are never cached, so a repeated request never replays a known-bad answer.
Repair rounds neither read nor write the cache: their conversations are
unique.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
from pydantic import ValidationError

from ductwork.clients.llm import ChatMessage, ChatRequest, ChatResponse, LLMClient
from ductwork.engine.graph import Plan, WorkflowInvalid, build_plan
from ductwork.engine.limits import UNLIMITED, WorkflowLimits
from ductwork.examples import read_workflow_file
from ductwork.jsonvalues import DEFAULT_MAX_DEPTH, find_problem
from ductwork.jsonvalues import dotted as dotted_path
from ductwork.models import (
    Position,
    RetryPolicy,
    ValidationIssue,
    Workflow,
    WorkflowDefinition,
)
from ductwork.nodes.base import NodeError, NodeType
from ductwork.service import Ductwork
from ductwork.settings import Settings

log = logging.getLogger("ductwork.generation")

FEW_SHOT_EXAMPLES: Final = ("02-welcome-email.json", "03-branching.json")
"""Files of the examples folder shown to the model as valid workflows."""

TEMPERATURE: Final = 0.2
"""Low: generation should follow the format, not be creative with it."""

MAX_ANSWER_TOKENS: Final = 4096

MAX_ISSUES_SENT: Final = 40
"""A broken answer can have hundreds of issues; the first ones are enough to repair it."""

# Layout of nodes the model left without a position: one column per depth.
_COLUMN_WIDTH: Final = 250.0
_ROW_HEIGHT: Final = 120.0

# Statuses with which a provider refuses a request it cannot parse or does not support.
_REJECTED_STATUSES: Final = frozenset({400, 422})


class GenerationError(Exception):
    """Generation could not produce a workflow."""


class LLMNotConfigured(GenerationError):
    """No LLM API key is configured, so nothing can be generated."""


class LLMUpstreamError(GenerationError):
    """The LLM provider failed or refused the request (after the client's retries)."""


class GenerationFailed(GenerationError):
    """The model did not produce a valid workflow within the allowed rounds.

    `issues` are the problems of its last answer, `rounds` the answers used,
    `last_answer` the raw text of the last one, and `draft` that answer as a workflow
    when it was one (well-formed, but invalid): an editor opens it with the problems
    pinned rather than losing it.
    """

    def __init__(
        self,
        issues: list[ValidationIssue],
        rounds: int,
        last_answer: str,
        draft: WorkflowDefinition | None = None,
    ) -> None:
        self.issues = issues
        self.rounds = rounds
        self.last_answer = last_answer
        self.draft = draft
        super().__init__(
            f"no valid workflow after {rounds} round{'s' if rounds != 1 else ''}; "
            f"{len(issues)} problem{'s' if len(issues) != 1 else ''} remain"
        )


@dataclass(frozen=True, slots=True)
class GenerationResult:
    """A generated workflow that passed every check."""

    definition: WorkflowDefinition
    rounds: int
    """LLM answers used, the valid one included (a cached first answer counts as one)."""
    model: str
    """The model that wrote the accepted answer, as the provider reported it."""
    cached: bool = False
    """Whether the accepted answer came from the LLM response cache."""
    workflow: Workflow | None = None
    """The stored workflow, when saving was asked for."""


@dataclass(frozen=True, slots=True)
class GenerationPrompt:
    """The system prompt and structured-output schema for one node registry."""

    system: str
    schema: dict[str, Any]
    node_types: tuple[str, ...]
    examples: tuple[str, ...]
    """File names of the few-shot examples that made it into the prompt."""

    @property
    def chars(self) -> int:
        return len(self.system)

    @property
    def approx_tokens(self) -> int:
        """A rough token count (about 4 characters a token for English and JSON)."""
        return (len(self.system) + 3) // 4


# Prompts by (node types and their classes, examples folder): built once per process.
_PROMPTS: dict[tuple[Any, ...], GenerationPrompt] = {}

# Index into `_response_formats` of the richest format each (base URL, model) accepted.
_FORMAT_LEVEL: dict[tuple[str, str], int] = {}


# System prompt -------------------------------------------------------------------


def _slim_schema(schema: Any) -> Any:
    """A config JSON Schema without what only adds tokens for a model.

    Drops pydantic's `title`s, and the null branch of optional fields
    (`anyOf: [X, {"type": "null"}]` becomes X: an optional field may simply
    be left out). The meaning for a writer of configs stays the same.
    """
    if isinstance(schema, list):
        return [_slim_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" and isinstance(value, str):
            continue
        if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            # Keys here are field names, not keywords: a field called "title" stays.
            out[key] = {name: _slim_schema(sub) for name, sub in value.items()}
        else:
            out[key] = _slim_schema(value)
    branches = out.get("anyOf")
    if isinstance(branches, list) and {"type": "null"} in branches:
        rest = [branch for branch in branches if branch != {"type": "null"}]
        del out["anyOf"]
        if out.get("default", ...) is None:
            del out["default"]
        if len(rest) == 1 and isinstance(rest[0], dict):
            out = {**rest[0], **out}
        elif rest:
            out["anyOf"] = rest
    return out


def _config_schema(node_type: NodeType[Any]) -> dict[str, Any]:
    schema = _slim_schema(node_type.json_schema())
    # Said once in the rules ("unknown keys are errors"; configs are objects).
    if schema.get("additionalProperties") is False:
        del schema["additionalProperties"]
    if schema.get("type") == "object":
        del schema["type"]
    return dict(schema)


def _compact(value: Any) -> str:
    return orjson.dumps(value).decode()


_FORMAT_RULES = """\
You design workflows for ductwork, a workflow engine for AI workflows.
Answer with ONE JSON object, the workflow, and nothing else: no prose, no markdown.

# Workflow JSON
{"name": str, "nodes": [node], "edges": [edge], "variables": [names of the run inputs \
the templates use], "metadata": {"description": str}}
node: {"id": str, "type": str, "config": {...}, "position": {"x": number, "y": number}}
  optional per node: "retry": <RETRY_FIELDS>, "timeout_seconds": number, \
"on_error": "fail"|"continue"|"branch"
edge: {"from": node id, "to": node id} plus "branch": label for edges out of a branching node
Rules:
- ids are unique snake_case (letters, digits, _), so templates can say outputs.<id>.
- The graph is acyclic: begin with one start node, end with one end node, every node \
reachable from start. Nodes with no path between them run in parallel.
- A node runs once all its predecessors settled and at least one incoming edge is active. \
Every edge out of a branching node carries one of its branch labels; the untaken side is \
skipped.
- "branch": "error" edges are followed when their source fails; the source needs \
"on_error": "branch". "on_error": "continue" lets the run go on past a failed node.
- config holds only the fields of its type's schema (unknown keys are errors); \
required fields must be present.
- position: lay nodes out left to right, 250 apart.

# Templates and expressions (Jinja2)
- Any string in a config may contain {{ expr }} templates.
- Names: run inputs at top level ({{user_name}}); outputs.<id>, the output of a node \
upstream of this one ({{outputs.ai1}}, {{outputs.fetch.body.items}}); input, the single \
predecessor's output ({node_id: output} when there are several); run.id; secrets.NAME.
- Expression fields (listed per type) hold a bare expression without braces: value > 10, \
status == 'active', 'Hi ' ~ user_name, input | length.
- Native fields (listed per type): a lone {{ expr }} keeps its type (list, object, number).
- Reference only run inputs and outputs of nodes upstream (a path of edges leads from \
them to the reader); an undefined name fails the run.
"""


def _field_types(schema: dict[str, Any]) -> str:
    """An object schema's fields as `{"name": type, ...}` for the prompt's prose."""

    def kind(field: dict[str, Any]) -> str:
        if "anyOf" in field:
            return "|".join(kind(branch) for branch in field["anyOf"])
        return str(field.get("type", "value"))

    return (
        "{"
        + ", ".join(f'"{name}": {kind(field)}' for name, field in schema["properties"].items())
        + "}"
    )


def _format_rules() -> str:
    """The format rules, with the retry fields read off `RetryPolicy`."""
    retry = _structured(RetryPolicy.model_json_schema())
    return _FORMAT_RULES.replace("<RETRY_FIELDS>", _field_types(retry))


def _node_type_section(name: str, node_type: NodeType[Any]) -> str:
    lines = [f"## {name}: {node_type.description}"]
    if node_type.branches:
        lines.append("branches: " + ", ".join(sorted(node_type.branches)))
    if node_type.expression_fields:
        lines.append("expression fields: " + ", ".join(sorted(node_type.expression_fields)))
    if node_type.native_fields:
        lines.append("native fields: " + ", ".join(sorted(node_type.native_fields)))
    lines.append("config: " + _compact(_config_schema(node_type)))
    return "\n".join(lines)


def _load_examples(
    registry: Mapping[str, NodeType[Any]], folder: Path
) -> list[tuple[str, dict[str, Any]]]:
    """The few-shot examples that exist here and are valid against this registry."""
    loaded: list[tuple[str, dict[str, Any]]] = []
    for file_name in FEW_SHOT_EXAMPLES:
        path = folder / file_name
        try:
            definition, _, _ = read_workflow_file(path)
            build_plan(definition, registry)
        except (OSError, ValueError, WorkflowInvalid) as exc:
            # An installed package may ship without examples: the prompt still works.
            log.warning("few-shot example %s left out of the generation prompt: %s", path, exc)
            continue
        loaded.append((file_name, _example_shape(definition)))
    return loaded


def _example_shape(definition: WorkflowDefinition) -> dict[str, Any]:
    """A definition as the model should write one: no default-valued noise, edges last."""
    nodes = []
    for spec in definition.nodes:
        node = spec.model_dump(mode="json", exclude_none=True)
        if node.get("on_error") == "fail":
            del node["on_error"]
        nodes.append(node)
    shaped: dict[str, Any] = {"name": definition.name, "nodes": nodes}
    shaped["edges"] = [edge.dump() for edge in definition.edges]
    if definition.variables:
        shaped["variables"] = definition.variables
    if definition.metadata:
        shaped["metadata"] = definition.metadata
    return shaped


# Keywords OpenAI's structured outputs accept (its "supported schemas" list); the others
# (title, default, examples, minLength, oneOf, ...) are dropped so the request is not
# refused. `strict` is not asked for: configs hold free-form maps (headers, params,
# mappings), which strict mode cannot express.
STRUCTURED_OUTPUT_KEYWORDS: Final = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "anyOf",
        "description",
        "$ref",
        "$defs",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
    }
)

# Narrower than the model on purpose: the model accepts any list or object, but a
# generated workflow should name the run inputs its templates use.
_VARIABLES_SCHEMA: Final = {
    "type": "array",
    "items": {"type": "string"},
    "description": "Names of the run inputs the templates use.",
}


def _structured(schema: Any) -> Any:
    """A pydantic JSON Schema cut down to the structured-output keywords.

    Objects with declared properties get `additionalProperties: false` (the model
    writes no keys the validator would refuse); `const` becomes a one-value `enum`
    and `oneOf` an `anyOf`; optional fields lose their null branch (they may be
    left out instead).
    """
    if isinstance(schema, list):
        return [_structured(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    slim = _slim_schema(schema)
    out: dict[str, Any] = {}
    for key, value in slim.items():
        if key == "const":
            out["enum"] = [value]
        elif key == "oneOf":
            out["anyOf"] = _structured(value)
        elif key in ("properties", "$defs"):
            out[key] = {name: _structured(sub) for name, sub in value.items()}
        elif key == "additionalProperties":
            if isinstance(value, dict):
                out[key] = _structured(value)
            # `true` is the default: leaving it out keeps the schema small.
        elif key in STRUCTURED_OUTPUT_KEYWORDS:
            out[key] = _structured(value)
    if "properties" in out:
        out["additionalProperties"] = False
    return out


def _rebased(schema: Any, prefix: str) -> Any:
    """`schema` with its `#/$defs/X` references renamed `#/$defs/{prefix}X`."""
    if isinstance(schema, list):
        return [_rebased(item, prefix) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _rebased(value, prefix) for key, value in schema.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        out["$ref"] = "#/$defs/" + prefix + ref.removeprefix("#/$defs/")
    return out


def _node_variant_name(type_name: str) -> str:
    return "node_" + re.sub(r"[^A-Za-z0-9_]", "_", type_name)


_FIELD_ANNOTATIONS = frozenset({"title", "description", "examples", "default"})
"""Keywords that describe a field rather than constrain its value."""


def _with_native_templates(config: dict[str, Any], fields: frozenset[str]) -> dict[str, Any]:
    """`config` (a node type's config schema) where each native field also takes a string.

    A native field's usual value is a lone `{{ expr }}` that renders to the declared
    type (a loop's `items: "{{ input.rows }}"`); a schema of the declared type alone
    (`array`) would make structured output refuse the commonest valid workflow.
    """
    properties = config.get("properties")
    if not isinstance(properties, dict):
        return config
    for name in fields:
        field = properties.get(name)
        if not isinstance(field, dict):
            continue
        alternatives = field.get("anyOf")
        if isinstance(alternatives, list):
            if not any(isinstance(a, dict) and a.get("type") == "string" for a in alternatives):
                properties[name] = {**field, "anyOf": [*alternatives, {"type": "string"}]}
        elif field.get("type") not in (None, "string"):  # no type: any value already
            declared = {k: v for k, v in field.items() if k not in _FIELD_ANNOTATIONS}
            notes = {k: v for k, v in field.items() if k in _FIELD_ANNOTATIONS}
            properties[name] = {**notes, "anyOf": [declared, {"type": "string"}]}
    return config


def workflow_schema(registry: Mapping[str, NodeType[Any]]) -> dict[str, Any]:
    """The JSON Schema asked for as structured output, derived from the models.

    `WorkflowDefinition` (with `NodeSpec`, `EdgeSpec`, `Position` and
    `RetryPolicy`) gives the shape; each node is one of a variant per registered
    type, whose `type` is that name and whose `config` is that type's config
    schema. A field added to any of these models appears here without an edit.
    """
    base = WorkflowDefinition.model_json_schema(by_alias=True)
    defs: dict[str, Any] = dict(base.pop("$defs", {}))
    node_spec = defs.pop("NodeSpec")
    variants = []
    for name, node_type in registry.items():
        variant_name = _node_variant_name(name)
        config = _with_native_templates(
            _rebased(node_type.json_schema(), variant_name + "_"), node_type.native_fields
        )
        for def_name, definition in config.pop("$defs", {}).items():
            defs[variant_name + "_" + def_name] = definition
        properties = dict(node_spec["properties"])
        properties["type"] = {"enum": [name]}
        properties["config"] = config
        defs[variant_name] = {
            **node_spec,
            "description": f"A {name} node: {node_type.description}",
            "properties": properties,
            "required": sorted({*node_spec.get("required", ()), "config"}),
        }
        variants.append({"$ref": f"#/$defs/{variant_name}"})
    base["properties"]["nodes"]["items"] = {"anyOf": variants}
    base["properties"]["variables"] = _VARIABLES_SCHEMA
    base["required"] = sorted({*base.get("required", ()), "nodes", "edges"})
    base["$defs"] = defs
    # Written for API clients ("accepts React Flow's source/target"): not for the model.
    base.pop("description", None)
    defs["EdgeSpec"]["description"] = "An edge; `branch` labels an edge out of a branching node."
    schema: dict[str, Any] = _structured(base)
    return schema


def generation_prompt(
    registry: Mapping[str, NodeType[Any]], examples_dir: Path
) -> GenerationPrompt:
    """The system prompt and output schema for `registry`, built once per process."""
    key = (
        tuple((name, type(node_type)) for name, node_type in registry.items()),
        str(examples_dir),
    )
    prompt = _PROMPTS.get(key)
    if prompt is not None:
        return prompt
    node_types = tuple(registry)
    sections = [_format_rules(), "# Node types"]
    sections.extend(_node_type_section(name, node_type) for name, node_type in registry.items())
    examples = _load_examples(registry, examples_dir)
    if examples:
        sections.append("# Examples of valid workflows")
        sections.extend(_compact(definition) for _, definition in examples)
    prompt = GenerationPrompt(
        system="\n".join(sections),
        schema=workflow_schema(registry),
        node_types=node_types,
        examples=tuple(name for name, _ in examples),
    )
    _PROMPTS[key] = prompt
    log.info(
        "generation system prompt: %d chars (~%d tokens), %d node types, %d examples",
        prompt.chars,
        prompt.approx_tokens,
        len(node_types),
        len(examples),
    )
    return prompt


# Reading and checking answers ------------------------------------------------------

_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?(.*?)```", re.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer.

    Tries, in order: the whole text; each fenced block (```json ... ```); the
    first `{` from which a complete JSON object decodes (the outermost
    object, with any prose around it ignored). Raises ValueError when there
    is none.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("the answer is empty")
    candidates = [stripped, *(block.strip() for block in _FENCE.findall(text))]
    for candidate in candidates:
        try:
            return orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
    decoder = json.JSONDecoder()
    start = stripped.find("{")
    last_error = "no JSON object found"
    while start != -1:
        try:
            value, _ = decoder.raw_decode(stripped, start)
        except json.JSONDecodeError as exc:
            last_error = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        except RecursionError:
            last_error = "nested too deeply"
        else:
            if isinstance(value, dict):
                return value
        start = stripped.find("{", start + 1)
    raise ValueError(f"the answer holds no JSON object ({last_error})")


def _pydantic_issues(data: Any, exc: ValidationError) -> list[ValidationIssue]:
    issues = []
    nodes = data.get("nodes") if isinstance(data, dict) else None
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        node_id = None
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            try:
                raw = nodes[loc[1]] if isinstance(nodes, list) else None
            except IndexError:
                raw = None
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                node_id = raw["id"]
        field = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
        issues.append(
            ValidationIssue(node_id=node_id, field=field.lstrip(".") or None, message=error["msg"])
        )
    return issues


def check_answer(
    text: str,
    registry: Mapping[str, NodeType[Any]],
    *,
    max_depth: int = DEFAULT_MAX_DEPTH,
    limits: WorkflowLimits = UNLIMITED,
) -> tuple[WorkflowDefinition | None, Plan | None, list[ValidationIssue]]:
    """Parse and validate a model's answer: (definition, plan, issues).

    Values a request could not carry (NaN, NUL, nesting past `max_depth`, ...) are
    issues too: a saved workflow holding one could not be read back.
    The plan is set only when there are no issues; the definition also when the answer
    is a well-formed workflow the engine refuses (a draft to show with its issues).
    """
    try:
        data = extract_json(text)
    except ValueError as exc:
        return None, None, [ValidationIssue(message=f"no workflow JSON found: {exc}")]
    if isinstance(data, dict) and "nodes" not in data and isinstance(data.get("workflow"), dict):
        data = data["workflow"]  # the examples' {"workflow": ...} wrapper
    if not isinstance(data, dict):
        return None, None, [ValidationIssue(message="the answer must be one JSON object")]
    problem = find_problem(data, max_depth)
    if problem is not None:
        path, why = problem
        return None, None, [ValidationIssue(field=dotted_path(path), message=why)]
    try:
        definition = WorkflowDefinition.model_validate(data)
    except ValidationError as exc:
        return None, None, _pydantic_issues(data, exc)
    try:
        plan = build_plan(definition, registry, limits)
    except WorkflowInvalid as exc:
        return definition, None, exc.issues
    return definition, plan, []


def _issue_line(issue: ValidationIssue) -> str:
    where = []
    if issue.node_id:
        where.append(f"node {issue.node_id!r}")
    if issue.field:
        where.append(f"field {issue.field}")
    return f"- {', '.join(where)}: {issue.message}" if where else f"- {issue.message}"


def repair_message(issues: Sequence[ValidationIssue], *, truncated: bool = False) -> str:
    """The user message asking the model to fix its previous answer."""
    lines = ["Your workflow is not valid. Problems (node / field / message):"]
    lines.extend(_issue_line(issue) for issue in issues[:MAX_ISSUES_SENT])
    if len(issues) > MAX_ISSUES_SENT:
        lines.append(f"- ... and {len(issues) - MAX_ISSUES_SENT} more")
    if truncated:
        lines.append(
            "Your answer was cut off at the output token limit: make the workflow more compact."
        )
    lines.append(
        "Fix every problem and answer with the complete corrected workflow as one JSON object, "
        "nothing else."
    )
    return "\n".join(lines)


def _lay_out(definition: WorkflowDefinition, plan: Plan) -> None:
    """Give nodes the model left unplaced a position: one column per depth, left to right."""
    depth: dict[str, int] = {}
    rows: dict[int, int] = {}
    for node_id in plan.order:
        node = plan.nodes[node_id]
        depth[node_id] = max((depth[p] + 1 for p in node.predecessors), default=0)
        row = rows.get(depth[node_id], 0)
        rows[depth[node_id]] = row + 1
        if node.spec.position is None:
            placed = Position(x=depth[node_id] * _COLUMN_WIDTH, y=row * _ROW_HEIGHT)
            for spec in definition.nodes:
                if spec.id == node_id:
                    spec.position = placed


# Talking to the model ----------------------------------------------------------------


def _response_formats(prompt: GenerationPrompt) -> tuple[dict[str, Any] | None, ...]:
    """Richest first: structured output, JSON mode, plain text."""
    return (
        {"type": "json_schema", "json_schema": {"name": "workflow", "schema": prompt.schema}},
        {"type": "json_object"},
        None,
    )


def _refused(exc: NodeError) -> bool:
    # LLMClient chains the SDK's APIStatusError; reading its status avoids importing openai.
    return getattr(exc.__cause__, "status_code", None) in _REJECTED_STATUSES


async def _ask(
    llm: LLMClient,
    settings: Settings,
    prompt: GenerationPrompt,
    messages: list[ChatMessage],
    model: str,
) -> tuple[ChatResponse, ChatRequest]:
    """One answer, stepping down the response formats the provider refuses."""
    formats = _response_formats(prompt)
    key = (settings.llm_base_url, model)
    level = _FORMAT_LEVEL.get(key, 0)
    while True:
        request = _request(messages, model, formats[level])
        try:
            response = await llm.chat(request)
        except NodeError as exc:
            if _refused(exc) and level + 1 < len(formats):
                log.info(
                    "LLM %s refused response_format %s (%s); trying %s",
                    model,
                    _format_name(formats[level]),
                    exc,
                    _format_name(formats[level + 1]),
                )
                level += 1
                continue
            raise LLMUpstreamError(str(exc)) from exc
        if level != _FORMAT_LEVEL.get(key, 0):
            _FORMAT_LEVEL[key] = level
        return response, request


def forget_provider_formats() -> None:
    """Forget which response formats providers refused (they may have been upgraded)."""
    _FORMAT_LEVEL.clear()


def _format_name(response_format: dict[str, Any] | None) -> str:
    return "plain text" if response_format is None else str(response_format["type"])


def _request(
    messages: list[ChatMessage], model: str, response_format: dict[str, Any] | None
) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=messages,
        temperature=TEMPERATURE,
        max_tokens=MAX_ANSWER_TOKENS,
        response_format=response_format,
    )


async def _cached_answer(app: Ductwork, request: ChatRequest) -> ChatResponse | None:
    raw = await app.components.cache.get(request.cache_key())
    if raw is None:
        return None
    try:
        return ChatResponse.model_validate_json(raw)
    except ValidationError:
        return None  # written by an incompatible version: ask again


async def generate_workflow(
    app: Ductwork,
    prompt: str,
    *,
    save: bool = False,
    model: str | None = None,
    max_rounds: int | None = None,
) -> GenerationResult:
    """Generate a valid workflow for `prompt`; with `save`, store it too.

    `model` defaults to DUCTWORK_LLM_DEFAULT_MODEL and `max_rounds` (LLM
    answers in all, repairs included) to DUCTWORK_GENERATE_MAX_ROUNDS.
    Raises `LLMNotConfigured` without an API key, `LLMUpstreamError` when the
    provider fails, and `GenerationFailed` (with the last answer's issues)
    when no answer was valid.
    """
    settings = app.settings
    secret = settings.llm_api_key
    if secret is None or not secret.get_secret_value():
        raise LLMNotConfigured(
            "workflow generation needs an LLM: set DUCTWORK_LLM_API_KEY (or OPENROUTER_API_KEY) "
            f"to the API key of {settings.llm_base_url}"
        )
    rounds_allowed = settings.generate_max_rounds if max_rounds is None else max_rounds
    if rounds_allowed < 1:
        raise ValueError("max_rounds must be at least 1")
    chosen_model = model or settings.llm_default_model
    system = generation_prompt(app.registry, settings.resolved_examples_dir)
    llm = app.components.services.llm
    ttl = settings.llm_cache_ttl_seconds

    opening = [
        ChatMessage(role="system", content=system.system),
        ChatMessage(
            role="user", content=f"Design a ductwork workflow for this request:\n\n{prompt}"
        ),
    ]
    messages = opening
    issues: list[ValidationIssue] = []
    answer = ""
    definition: WorkflowDefinition | None = None
    for round_number in range(1, rounds_allowed + 1):
        response: ChatResponse | None = None
        first_request: ChatRequest | None = None
        if round_number == 1 and ttl > 0:
            level = _FORMAT_LEVEL.get((settings.llm_base_url, chosen_model), 0)
            first_request = _request(messages, chosen_model, _response_formats(system)[level])
            response = await _cached_answer(app, first_request)
        cached = response is not None
        if response is None:
            response, first_request = await _ask(llm, settings, system, messages, chosen_model)
        answer = response.content
        definition, plan, issues = check_answer(
            answer, app.registry, max_depth=settings.max_json_depth, limits=app.limits
        )
        if definition is not None and plan is not None:
            if round_number == 1 and not cached and ttl > 0 and first_request is not None:
                await app.components.cache.set(
                    first_request.cache_key(), orjson.dumps(response.model_dump(mode="json")), ttl
                )
            _lay_out(definition, plan)
            definition.metadata["generation"] = {
                "prompt": prompt,
                "model": response.model,
                "rounds": round_number,
            }
            workflow = await app.create_workflow(definition) if save else None
            log.info(
                "generated workflow %r in %d round(s)%s",
                definition.name,
                round_number,
                " (cached)" if cached else "",
            )
            return GenerationResult(
                definition=definition,
                rounds=round_number,
                model=response.model,
                cached=cached,
                workflow=workflow,
            )
        log.info(
            "generation round %d/%d: %d problem(s), first: %s",
            round_number,
            rounds_allowed,
            len(issues),
            _issue_line(issues[0]) if issues else "-",
        )
        # Only the latest attempt goes back: it carries the earlier fixes, and the
        # request stays the same size however many rounds it takes.
        messages = [
            *opening,
            ChatMessage(role="assistant", content=answer or "(empty answer)"),
            ChatMessage(
                role="user",
                content=repair_message(issues, truncated=response.finish_reason == "length"),
            ),
        ]
    raise GenerationFailed(issues, rounds_allowed, answer, draft=definition)


__all__ = [
    "GenerationError",
    "GenerationFailed",
    "GenerationPrompt",
    "GenerationResult",
    "LLMNotConfigured",
    "LLMUpstreamError",
    "check_answer",
    "extract_json",
    "forget_provider_formats",
    "generate_workflow",
    "generation_prompt",
    "repair_message",
    "workflow_schema",
]
