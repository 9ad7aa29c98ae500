"""Build a real embedded ductwork (SQLite store, in-process queue/bus) for tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from ductwork.models import WorkflowDefinition
from ductwork.nodes.base import (
    NodeConfig,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    RetryableError,
)
from ductwork.nodes.registry import REGISTRY
from ductwork.runtime import build
from ductwork.service import Ductwork
from ductwork.settings import Settings
from ductwork.usage import CallUsage
from tests.support.polling import eventually


class ProbeConfig(NodeConfig):
    fail_times: int = 0
    sleep: float = 0.0
    fatal: bool = False
    output: Any = None
    together: int = 0
    """Wait until this many probes of the run have been running at once; fail if they never are."""
    hold: bool = False
    """Wait until the test calls `ProbeNode.release()`."""


TOGETHER_WITHIN_SECONDS = 10.0
"""How long a `together` probe waits for the others: only an engine that runs them one
after another makes it wait that long."""


class ProbeNode(NodeType[ProbeConfig]):
    """A test node: counts calls per (run, node), sleeps, fails a number of times.

    It also records what the engine did with it, so tests can assert causes rather
    than durations: how many probes of a run were inside `run()` at once
    (`peak_running`), and which were cancelled mid-run rather than left to finish.
    """

    type_name = "probe"
    config_model = ProbeConfig
    native_fields = frozenset({"output"})

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        self.attempts_seen: list[int] = []
        self.running: dict[str, set[str]] = {}
        """Per run, the node ids whose probe is inside `run()` now."""
        self.peak_running: dict[str, int] = {}
        """Per run, the most probes that were inside `run()` at the same time."""
        self.cancelled: set[tuple[str, str]] = set()
        """(run, node) of probes cancelled while they ran."""
        self.finished: set[tuple[str, str]] = set()
        """(run, node) of probes that returned or raised on their own."""
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let every `hold` probe, waiting now or arriving later, go on."""
        self._released.set()

    async def run(self, config: ProbeConfig, ctx: NodeContext) -> NodeResult:
        key = (ctx.execution_id, ctx.node_id)
        self.calls[key] = self.calls.get(key, 0) + 1
        self.attempts_seen.append(ctx.attempt)
        running = self.running.setdefault(ctx.execution_id, set())
        running.add(ctx.node_id)
        self.peak_running[ctx.execution_id] = max(
            self.peak_running.get(ctx.execution_id, 0), len(running)
        )
        try:
            result = await self._behave(config, ctx)
        except asyncio.CancelledError:
            self.cancelled.add(key)
            raise
        except Exception:
            self.finished.add(key)
            raise
        finally:
            running.discard(ctx.node_id)
        self.finished.add(key)
        return result

    async def _behave(self, config: ProbeConfig, ctx: NodeContext) -> NodeResult:
        key = (ctx.execution_id, ctx.node_id)
        if config.together:
            await self._wait_for_company(ctx.execution_id, config.together)
        if config.hold:
            await self._released.wait()
        if config.sleep:
            await asyncio.sleep(config.sleep)
        if self.calls[key] <= config.fail_times:
            raise RetryableError(f"transient failure {self.calls[key]}")
        if config.fatal:
            raise NodeError("fatal failure")
        return NodeResult(output=config.output if config.output is not None else ctx.input)

    async def _wait_for_company(self, execution_id: str, count: int) -> None:
        try:
            await eventually(
                lambda: self.peak_running[execution_id] >= count,
                within=TOGETHER_WITHIN_SECONDS,
                interval=0.005,
            )
        except AssertionError:
            raise NodeError(
                f"at most {self.peak_running[execution_id]} of {count} probes ran at once"
            ) from None


@asynccontextmanager
async def embedded(
    tmp_path: Path, *, extra_nodes: list[NodeType[Any]] | None = None, **overrides: Any
) -> AsyncIterator[Ductwork]:
    """A started embedded app on a fresh SQLite file; closed afterwards."""
    settings = Settings(data_dir=tmp_path, **overrides)
    registry = dict(REGISTRY)
    for node in extra_nodes or []:
        registry[node.type_name] = node
    app = build(settings, registry=registry)
    await app.start()
    try:
        yield app
    finally:
        await app.close()


def definition(
    nodes: list[dict[str, Any]], edges: list[tuple[str, str] | dict[str, Any]]
) -> WorkflowDefinition:
    """A definition from short node dicts and (from, to) pairs."""
    return WorkflowDefinition.model_validate(
        {
            "name": "test",
            "nodes": nodes,
            "edges": [{"from": e[0], "to": e[1]} if isinstance(e, tuple) else e for e in edges],
        }
    )


class SpendConfig(NodeConfig):
    model: str = "test/model"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    """The cost the "provider" reports; None: priced from DUCTWORK_LLM_PRICES, if at all."""
    estimate: float = 0.0
    """What the node tells `check_budget` the call could cost."""
    calls: int = 1
    hold: bool = False
    """After its budget checks, wait until the test calls `SpendNode.release()`."""
    fail: bool = False
    """Fail (retryably) after spending, reporting the usage with the error."""
    fail_unbilled: int = 0
    """Fail (retryably) the first this many attempts after the budget check, reporting no
    usage: an upstream 503, which bills nothing."""


class SpendNode(NodeType[SpendConfig]):
    """A test stand-in for an LLM node: asks `check_budget(estimate)` before each
    "upstream call", counts the calls it made (`calls`), and reports the usage it was
    given as `meta.usage`, as an AI node does (ductwork.usage.CallUsage)."""

    type_name = "spend"
    config_model = SpendConfig

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], int] = {}
        """(run, node) -> upstream calls made (checks that passed)."""
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let every `hold` node, waiting now or arriving later, go on."""
        self._released.set()

    async def run(self, config: SpendConfig, ctx: NodeContext) -> NodeResult:
        key = (ctx.execution_id, ctx.node_id)
        for _ in range(config.calls):
            await ctx.check_budget(config.estimate)
            self.calls[key] = self.calls.get(key, 0) + 1
        if ctx.attempt <= config.fail_unbilled:
            raise RetryableError("HTTP 503: the provider is unavailable")
        if config.hold:
            await self._released.wait()
        usage = CallUsage(
            model=config.model,
            prompt_tokens=config.prompt_tokens,
            completion_tokens=config.completion_tokens,
            cost=config.cost,
            calls=config.calls,
        )
        if config.fail:
            raise RetryableError("the answer was unusable", usage=usage.dump())
        return NodeResult(output=ctx.node_id, meta={"usage": usage.dump()})
