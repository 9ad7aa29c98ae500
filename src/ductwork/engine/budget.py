"""A run's token usage and cost, and the workflow's budgets (issue 11).

The executor keeps one `RunBudget` per driven run. A node that calls an LLM
reports what it spent as `NodeResult.meta["usage"]` (`CallUsage.dump()`); the
executor hands that to `RunBudget.record` when the node completes, and commits
the new `usage`/`cost` run fields in the same checkpoint as the node's state, so
a crash can neither lose nor double-count a node's spend.

Before each upstream call a node asks `RunBudget.refusal(node_id, estimate)`
(through `NodeContext.check_budget`). The estimate is reserved until the node
settles, so parallel branches cannot all pass the check on the same remaining
money. Calls to models without a price (neither the provider's reported cost nor
DUCTWORK_LLM_PRICES) count as `unpriced_calls` and cost nothing here: budgets do
not see them (docs/costs.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ductwork.models import Run, WorkflowSettings
from ductwork.settings import ModelPrice
from ductwork.store.base import Store
from ductwork.usage import CallUsage, RunUsage, price_of, start_of_day

DAY_SPEND_CACHE_SECONDS = 1.0
"""How long a run reuses its reading of the workflow's other runs' spend today: one
store query per second at most, however many calls a run makes (bench/budget.py)."""


def dollars(value: float) -> str:
    """`$0.10`, `$0.0123`: cents when exact, else four decimals (more for tiny sums)."""
    if round(value, 2) == value:
        return f"${value:.2f}"
    if abs(value) >= 0.0001:
        return f"${value:.4f}"
    return f"${value:.8f}"


def call_usage(meta: Mapping[str, Any], prices: Mapping[str, ModelPrice]) -> CallUsage | None:
    """The `CallUsage` a node's `meta` reports, or None when it reports none.

    A node that reports tokens without a cost (no `cost`, or None) is priced from
    the price table here, so every node type is counted alike; `meta.model` stands
    in for a usage without its own `model`.
    """
    raw = meta.get("usage")
    if not isinstance(raw, Mapping):
        return None
    usage = CallUsage.load(raw)
    if not usage.model and isinstance(meta.get("model"), str):
        usage.model = meta["model"]
    if usage.cost is None:
        usage.cost = price_of(usage.model, usage.prompt_tokens, usage.completion_tokens, prices)
    return usage


class RunBudget:
    """One run's spend so far, its calls in flight, and its workflow's budgets."""

    def __init__(self, run: Run, store: Store, prices: Mapping[str, ModelPrice]) -> None:
        self.run_id = run.execution_id
        self.workflow_id = run.workflow_id
        self.settings: WorkflowSettings = run.definition.settings
        self.usage = RunUsage.load(run.usage)
        self.reported = run.usage is not None
        """Whether a node of the run reported usage (then `run_finished` carries it)."""
        self._store = store
        self._prices = prices
        self._reserved: dict[str, float] = {}
        """Per node, the estimates of its calls since it last settled."""
        self._others_today: tuple[datetime, float, float] | None = None
        """(day, other runs' spend that day, monotonic time read) — see DAY_SPEND_CACHE_SECONDS."""

    def record(self, node_id: str, meta: Mapping[str, Any]) -> CallUsage | None:
        """Count a settled node's reported usage in (None: it reported none) and end
        its reservations. The caller checkpoints `run_fields()` with the node's state."""
        self._reserved.pop(node_id, None)
        usage = call_usage(meta, self._prices) if meta else None
        if usage is not None:
            self.usage.add(usage)
            self.reported = True
        return usage

    def release(self, node_id: str) -> None:
        """A node settled without reporting usage: its reservations end."""
        self._reserved.pop(node_id, None)

    def run_fields(self) -> dict[str, Any]:
        """The `usage` and `cost` run fields as they stand."""
        return {"usage": self.usage.dump(), "cost": round(self.usage.cost, 10)}

    async def refusal(self, node_id: str, estimate: float) -> str | None:
        """Why a call costing up to `estimate` must not be made (None: go ahead, and
        the estimate is reserved for `node_id` until it settles)."""
        estimate = float(estimate)
        if math.isnan(estimate) or estimate < 0:
            # Nothing to reserve: a NaN would make every later comparison false (pass).
            estimate = 0.0
        per_run = self.settings.max_cost_per_run
        per_day = self.settings.max_cost_per_day
        if per_run is None and per_day is None:
            return None
        spent = self.usage.cost
        reserved = sum(self._reserved.values())
        if per_run is not None and spent + reserved + estimate > per_run:
            return self._message(
                estimate, spent, reserved, f"the run has spent {dollars(spent)}", per_run, "run"
            )
        if per_day is not None:
            today = spent + await self._others_spent_today()
            if today + reserved + estimate > per_day:
                return self._message(
                    estimate,
                    today,
                    reserved,
                    f"the workflow has spent {dollars(today)} today (UTC)",
                    per_day,
                    "day",
                )
        self._reserved[node_id] = self._reserved.get(node_id, 0.0) + estimate
        return None

    @staticmethod
    def _message(
        estimate: float, spent: float, reserved: float, has_spent: str, budget: float, per: str
    ) -> str:
        in_flight = f" (and {dollars(reserved)} is held by calls in flight)" if reserved else ""
        return (
            f"budget: this call could cost up to {dollars(estimate)}; {has_spent}{in_flight} "
            f"of its max_cost_per_{per} {dollars(budget)}"
        )

    async def _others_spent_today(self) -> float:
        """The cost of the workflow's other runs created since 00:00 UTC (cached briefly)."""
        day = start_of_day(datetime.now(UTC))
        clock = time.monotonic()
        cached = self._others_today
        if cached is not None and cached[0] == day and clock - cached[2] < DAY_SPEND_CACHE_SECONDS:
            return cached[1]
        spent = await self._store.workflow_cost_since(
            self.workflow_id, day, exclude_execution_id=self.run_id
        )
        self._others_today = (day, spent, clock)
        return spent
