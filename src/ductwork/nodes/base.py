"""What a node type is: a config model plus one async `run`.

A node module defines a `NodeType` subclass; `nodes/registry.py` lists them.
Configs are validated when a workflow is saved and exported as JSON Schema
for builder UIs. String fields may hold `{{ }}` templates, rendered before
`run`; fields named in `expression_fields` hold bare expressions
(`value > 10`) that the node evaluates itself through `NodeContext`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ductwork.engine.templating import TemplateFailure, compile_expression

if TYPE_CHECKING:
    from ductwork.cache.base import Cache
    from ductwork.clients.http import GuardedHttpClient
    from ductwork.clients.llm import LLMClient
    from ductwork.clients.mail import Mailer
    from ductwork.clients.sql import SqlConnections
    from ductwork.engine.limits import WorkflowLimits
    from ductwork.models import NodeState
    from ductwork.security.credential_types import Credential
    from ductwork.settings import Settings
    from ductwork.triggers.resume import ResumeLinks


class NodeError(Exception):
    """A node failed; the message is shown to the user as the node's error."""

    retryable: bool = False
    usage: dict[str, Any] | None = None
    """What the node spent before it failed (`ductwork.usage.CallUsage.dump()`): counted
    into the run's usage like a completed node's `meta.usage` (docs/costs.md)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool | None = None,
        usage: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        if usage is not None:
            self.usage = usage


class RetryableError(NodeError):
    """A transient failure (429, 5xx, timeout, connection reset): worth retrying."""

    retryable = True


class NodeConfig(BaseModel):
    """Base for node configs: unknown keys are errors, so typos are caught at save time."""

    model_config = ConfigDict(extra="forbid")


ConfigT = TypeVar("ConfigT", bound=NodeConfig)


def credential_field(types: str) -> Any:
    """The optional `credential: NAME` field of a node config (a name, never a template:
    a run loads the credentials its workflow names before it starts)."""
    return Field(
        default=None,
        min_length=1,
        max_length=200,
        description=f"Name of a stored credential ({types}); overrides the settings' defaults.",
    )


@dataclass(slots=True)
class NodeResult:
    """What a node produced.

    `branch` names the outgoing edges to follow (condition: "true"/"false");
    `park_until` asks the engine to park the run until then (durable delay);
    `resumable` parks it until someone resumes the node (`Store.resume_node`), with
    `park_until`, when set, as the time it stops waiting (`NodeType.wake` decides then).
    """

    output: Any = None
    branch: str | None = None
    cached: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    park_until: datetime | None = None
    resumable: bool = False


@dataclass(slots=True)
class NodeServices:
    """The clients nodes use, built once per process by the composition root."""

    settings: Settings
    cache: Cache
    llm: LLMClient
    mail: Mailer
    http: GuardedHttpClient
    sql: SqlConnections
    resume_links: ResumeLinks | None = None
    """Signs the links that resume `wait` nodes; None: wait nodes cannot run."""
    child_runs: ChildRuns | None = None
    """Starts and awaits the runs `sub-workflow` nodes call (the service sets it)."""
    code: CodeRunner | None = None
    """The sandboxed process pool `code` nodes run in; None unless DUCTWORK_CODE_NODE
    is `enabled`."""


class ChildRuns(Protocol):
    """What a `sub-workflow` node needs from the application: start a child run, await it.

    Implemented by the service (`ductwork.subflows`), which sets `NodeServices.child_runs`.
    """

    async def start_child(
        self,
        *,
        parent: ParentLink,
        workflow_id: str,
        version: int | None,
        inputs: Mapping[str, Any],
        mode: Literal["sync", "async"] = "sync",
    ) -> Any:
        """Start (or find, after a crash: keyed by parent run and node) the child run;
        returns the `Run`. `mode` is recorded as the child trigger's `mode`: only a sync
        child (its parent waits for it) runs outside the concurrency limits. Raises
        NodeError for an unknown workflow or version, or past DUCTWORK_MAX_WORKFLOW_DEPTH."""
        ...

    async def wait_child(self, execution_id: str) -> Any:
        """The child `Run` once it has finished (cancelling the wait cancels the child)."""
        ...


@dataclass(frozen=True, slots=True)
class CodeOutcome:
    """What a `code` call returned: `main`'s JSON result and what it printed."""

    value: Any
    stdout: str


class CodeRunner(Protocol):
    """Runs user Python outside the server's process (`ductwork.code`)."""

    async def call(
        self,
        source: str,
        arguments: Mapping[str, Any],
        *,
        timeout_seconds: float,
        workflow_id: str = "",
    ) -> CodeOutcome:
        """Call `main(**arguments)` defined by `source` in a sandboxed worker.

        `workflow_id`: whose code it is; a worker never runs code of two workflows.

        Raises NodeError on a timeout, a memory blow-up, a crash, an exception in
        the code (its traceback in the message) or a result that is not JSON.
        """
        ...


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """How one item of a loop body ended: its result, or the body node that failed."""

    index: int
    ok: bool
    result: Any = None
    """The output of the body's single sink node; {sink id: output} for several."""
    node_id: str | None = None
    """The body node (plain id) that failed the item; the loop's own id when the item's
    result could not be stored (DUCTWORK_MAX_RUN_OUTPUT_BYTES)."""
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ParentLink:
    """Which run and node a child run belongs to."""

    execution_id: str
    workflow_id: str
    node_id: str
    depth: int


class NodeContext(Protocol):
    """What the engine hands a running node."""

    @property
    def execution_id(self) -> str: ...
    @property
    def workflow_id(self) -> str: ...
    @property
    def node_id(self) -> str: ...
    @property
    def attempt(self) -> int:
        """1 on the first try, raised on every retry and after a crash."""
        ...

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and crash re-runs of this node in this run."""
        ...

    @property
    def input(self) -> Any:
        """The single predecessor's output; a {node_id: output} dict when there are several."""
        ...

    @property
    def names(self) -> Mapping[str, Any]:
        """Template names: inputs at top level, `outputs`, `input`, `run`, `secrets`."""
        ...

    @property
    def services(self) -> NodeServices: ...

    def log(self, message: str, level: str = "info") -> None:
        """Add a line to the run's logs (and live event stream)."""
        ...

    def emit_token(self, text: str) -> None:
        """Stream a piece of LLM output to live subscribers."""
        ...

    def credential(
        self, name: str, types: Collection[str], field: str = "config.credential"
    ) -> Credential:
        """The run's credential `name` (loaded at run start), of one of `types`.

        Raises NodeError naming `field` when the run has no such credential or it
        is of another type.
        """
        ...

    @property
    def depth(self) -> int:
        """The run's sub-workflow depth (0 for a top-level run)."""
        ...

    async def run_items(
        self, items: Sequence[Any], *, concurrency: int, stop_on_error: bool
    ) -> list[ItemOutcome]:
        """Run this node's body once per item, at most `concurrency` at a time (a node
        with `has_body` only). Items a previous attempt completed are not run again.
        With `stop_on_error` the first failed item cancels the others and the list
        returned holds the outcomes settled so far; otherwise one outcome per item, in
        item order."""
        ...

    def redact(self, value: Any) -> Any:
        """A copy of a JSON-like value with the run's secrets masked: for what a node
        hands outside the run, where the engine does not mask it (a child run's inputs)."""
        ...

    async def check_budget(self, estimated_cost: float) -> None:
        """Raise NodeError before a call costing up to `estimated_cost` that would take
        the run past its workflow's `max_cost_per_run` or the workflow past its
        `max_cost_per_day`. A node reports what it actually spent as
        `NodeResult.meta["usage"]` (`ductwork.usage.CallUsage.dump()`)."""
        ...


def evaluate(source: str, names: Mapping[str, Any], field: str) -> Any:
    """Evaluate the expression in config field `field` (compiled once per distinct source).

    Failures become a NodeError naming the field, e.g. `config.condition: undefined variable`.
    """
    try:
        return compile_expression(source).evaluate(names)
    except TemplateFailure as exc:
        raise NodeError(f"config.{field}: {exc}") from None


class NodeType(Generic[ConfigT]):
    """A kind of node. Subclasses set the class attributes and implement `run`."""

    type_name: ClassVar[str]
    description: ClassVar[str] = ""
    config_model: type[ConfigT]
    expression_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields holding bare expressions: checked at save time, not rendered."""
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields used exactly as written: never rendered, compiled or scanned as
    templates or expressions (a `code` node's Python source, where `{{` is just text)."""
    secret_free_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields whose templates may not read `secrets` (refused at save time): their
    rendered value leaves the run, where its secrets are not masked (a child run's inputs)."""
    native_fields: ClassVar[frozenset[str]] = frozenset()
    """Config fields where a lone `{{ expr }}` keeps the value's type (lists, dicts, numbers)."""
    branches: ClassVar[frozenset[str]] = frozenset()
    """Branch labels this node can take besides "error"; empty means plain edges only."""
    side_effects: ClassVar[bool] = False
    """True when running twice is visible outside (email, webhook): the engine commits
    the node's `running` state before calling `run`, so a crash re-run is counted."""
    resumable: ClassVar[bool] = False
    """True when the node parks until someone resumes it (`wait`): the engine offers
    its resume link to templates as `run.resume_url` / `run.resume_urls.<id>`."""
    has_body: ClassVar[bool] = False
    """True when other nodes may name this one as their `parent` (`loop`): they form its
    body, a sub-graph the node runs through `NodeContext.run_items`."""

    keyed_input: ClassVar[bool] = False
    """True: `ctx.input` is always a {predecessor id: output} dict of the active incoming
    edges, in edge order, even with one (`merge` needs to know where each value came from)."""

    def prepare(self) -> None:
        """Start slow one-time setup (an SDK import) in the background; return at once.

        Called when a plan holding a node of this type is built to be run, so a process
        pays for what only some node types need (the LLM SDK) only when a workflow uses
        them. Most node types need nothing.
        """

    def fires_early(self, config: ConfigT) -> bool:
        """True when the node runs as soon as one predecessor has completed along an
        active edge, not once every predecessor has settled (`merge` in `first` mode).
        A predecessor that failed with on_error continue does not fire it, and its keyed
        input lists completed branches before failed ones. The run still waits for the
        other branches; the node runs once."""
        return False

    def expression_fields_for(self, config: Mapping[str, Any]) -> frozenset[str]:
        """`expression_fields` for this raw config (some nodes hold expressions in some modes)."""
        return self.expression_fields

    def html_fields_for(self, config: Mapping[str, Any]) -> frozenset[str]:
        """Config fields whose templates HTML-escape inserted values, for this raw config."""
        return frozenset()

    def limit_issues(
        self,
        config: ConfigT,
        limits: WorkflowLimits,
        rendered_later: frozenset[str] = frozenset(),
    ) -> list[tuple[str, str]]:
        """(config field, message) for each value of `config` past a ceiling of `limits`.

        Called when a workflow is saved, with `rendered_later` naming the top-level
        fields that hold templates (their values are known only when the node runs,
        so they are skipped); nodes with such ceilings call it again from `run` on
        the rendered config. Most node types have none.
        """
        return []

    async def run(self, config: ConfigT, ctx: NodeContext) -> NodeResult:
        """Do the node's work. Raise NodeError (or RetryableError) to fail it."""
        raise NotImplementedError

    def wake(self, state: NodeState, now: datetime) -> NodeResult | None:
        """What a parked node comes to when its run is driven again; None: it waits on.

        Called with the node's stored state (its `meta` is what `run` returned with
        it, plus the engine's `resumable`/`resumed`/`resume_payload`); raise NodeError
        to fail the node. The default ends a durable delay: done once its wake time
        has come, with the output it parked with.
        """
        if state.wake_at is not None and state.wake_at <= now:
            return NodeResult(output=state.output)
        return None

    def json_schema(self) -> dict[str, Any]:
        """The config's JSON Schema for builder UIs."""
        return self.config_model.model_json_schema()
