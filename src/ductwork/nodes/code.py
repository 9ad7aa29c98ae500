"""`code`: runs a Python function in a sandboxed worker process (docs/code-node.md).

The source defines `main(input, inputs, outputs)`: `input` is the predecessor's output
(a {node_id: output} dict when there are several), `inputs` the run's inputs,
`outputs` the completed nodes' outputs. `main` may declare only the arguments it uses.
Its return value, which must be JSON, is the node's output; what it prints goes to the
node's logs. Only the standard library is importable. The source is used as written
(no `{{ }}` templating: it is code).

Runs only when the server has DUCTWORK_CODE_NODE=enabled; only editors and admins can
save workflows (and so code).
"""

from __future__ import annotations

import ast
from typing import Any

from pydantic import Field, field_validator

from ductwork.code.errors import CodeError
from ductwork.engine.limits import WorkflowLimits, number
from ductwork.nodes.base import NodeConfig, NodeContext, NodeError, NodeResult, NodeType

MAX_CODE_CHARS = 100_000
"""Longest source a node may hold."""

MAX_LOG_LINES = 100
"""Lines of a call's printed output that become log entries; the rest are counted."""

NOT_INPUTS = frozenset({"outputs", "run", "secrets", "input"})
"""Template names that are not run inputs (and `secrets` is never handed to code)."""

DISABLED = (
    "code nodes are disabled on this server; an operator enables them with "
    "DUCTWORK_CODE_NODE=enabled (read docs/code-node.md first)"
)

EXAMPLE = "def main(input, inputs, outputs):\n    return {'total': sum(input['values'])}\n"


class CodeConfig(NodeConfig):
    code: str = Field(
        min_length=1,
        max_length=MAX_CODE_CHARS,
        description="Python source defining `main(input, inputs, outputs)`; its JSON return "
        "value is the node's output. Not templated.",
        examples=[EXAMPLE],
        # A hint for builder UIs: edit it as Python, not as a template.
        json_schema_extra={"contentMediaType": "text/x-python"},
    )
    timeout_seconds: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Longest `main` may run; at most DUCTWORK_CODE_TIMEOUT_SECONDS (its default).",
    )

    @field_validator("code")
    @classmethod
    def _compiles_and_defines_main(cls, source: str) -> str:
        try:
            tree = ast.parse(source, "<code>")
            compile(tree, "<code>", "exec")
        except SyntaxError as exc:
            raise ValueError(f"line {exc.lineno}: {exc.msg}") from None
        except (ValueError, RecursionError, MemoryError) as exc:
            # ValueError: NUL characters; RecursionError: nested too deeply to parse.
            raise ValueError(f"does not compile: {exc or type(exc).__name__}") from None
        if not any(_binds_main(statement) for statement in tree.body):
            raise ValueError(
                "defines no top-level `main` function: def main(input, inputs, outputs)"
            )
        return source


def _binds_main(statement: ast.stmt) -> bool:
    if isinstance(statement, ast.FunctionDef):
        return statement.name == "main"
    if isinstance(statement, ast.AsyncFunctionDef) and statement.name == "main":
        raise ValueError("`main` must be a plain function (def), not async def")
    if isinstance(statement, ast.Assign):
        return any(isinstance(t, ast.Name) and t.id == "main" for t in statement.targets)
    if isinstance(statement, ast.ImportFrom | ast.Import):
        return any((alias.asname or alias.name) == "main" for alias in statement.names)
    return False


class CodeNode(NodeType[CodeConfig]):
    type_name = "code"
    description = "Runs a Python function `main(input, inputs, outputs)` in a sandboxed process."
    config_model = CodeConfig
    raw_fields = frozenset({"code"})

    def json_schema(self) -> dict[str, Any]:
        schema = super().json_schema()
        schema["description"] = __doc__
        return schema

    def limit_issues(
        self,
        config: CodeConfig,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        ceiling = limits.max_code_timeout_seconds
        wanted = config.timeout_seconds
        if ceiling is None or wanted is None or wanted <= ceiling:
            return []
        return [
            (
                "timeout_seconds",
                f"timeout_seconds is {number(wanted)}; the limit is {number(ceiling)} "
                "(DUCTWORK_CODE_TIMEOUT_SECONDS)",
            )
        ]

    async def run(self, config: CodeConfig, ctx: NodeContext) -> NodeResult:
        services = ctx.services
        runner = services.code
        settings = services.settings
        if runner is None or settings.code_node != "enabled":
            raise NodeError(DISABLED)
        ceiling = settings.code_timeout_seconds
        timeout = min(config.timeout_seconds or ceiling, ceiling)
        names = ctx.names
        arguments = {
            "input": ctx.input,
            "inputs": {k: v for k, v in names.items() if k not in NOT_INPUTS},
            # A plain dict: the pool sends JSON, and a scope may hold another mapping.
            "outputs": dict(names.get("outputs", {})),
        }
        try:
            outcome = await runner.call(
                config.code, arguments, timeout_seconds=timeout, workflow_id=ctx.workflow_id
            )
        except CodeError as exc:
            _log_stdout(ctx, exc.stdout)
            raise
        _log_stdout(ctx, outcome.stdout)
        return NodeResult(output=outcome.value)


def _log_stdout(ctx: NodeContext, stdout: str) -> None:
    """What the code printed, a log entry per line (bounded: MAX_LOG_LINES)."""
    if not stdout:
        return
    lines = stdout.splitlines()
    for line in lines[:MAX_LOG_LINES]:
        ctx.log(line)
    if len(lines) > MAX_LOG_LINES:
        ctx.log(f"... {len(lines) - MAX_LOG_LINES} more lines of output not logged")
