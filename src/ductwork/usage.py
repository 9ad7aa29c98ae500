"""Token usage and cost: of one LLM call, summed over a run (pure data, no I/O).

An AI node reports each call's `CallUsage` as `NodeResult.meta["usage"]`; the engine
adds it to the run's `RunUsage` (stored as `Run.usage`, its total as `Run.cost`), and
budgets (`WorkflowSettings.max_cost_per_run` / `max_cost_per_day`) are checked against
those sums before the next call (`NodeContext.check_budget`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ductwork.settings import ModelPrice


@dataclass(slots=True)
class CallUsage:
    """Tokens and cost of one node's LLM calls (repairs and fallbacks included)."""

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    """None when neither the provider reported it nor the price table knows the model."""
    calls: int = 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def dump(self) -> dict[str, Any]:
        """The JSON form stored in a node's `meta.usage`."""
        return {
            "model": self.model,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            "calls": self.calls,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> CallUsage:
        """The inverse of `dump` (unknown keys ignored, missing counts 0)."""
        cost = data.get("cost")
        calls = data.get("calls")
        return cls(
            model=str(data.get("model") or ""),
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            completion_tokens=int(data.get("completion_tokens") or 0),
            cost=float(cost) if isinstance(cost, int | float) else None,
            # 0 is a real count: an answer served from the LLM cache made no call.
            calls=int(calls) if isinstance(calls, int) else 1,
        )


def price_of(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: Mapping[str, ModelPrice],
    reported: float | None = None,
) -> float | None:
    """The cost of a call: the provider's `reported` cost when given, else the price
    table's (per million tokens); None when the model is not in the table."""
    if reported is not None:
        return reported
    price = prices.get(model)
    if price is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def _model_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stored `by_model` entry with every count present (a partial one must not
    stop a run from adding to it)."""
    return {
        **entry,
        "prompt_tokens": int(entry.get("prompt_tokens") or 0),
        "completion_tokens": int(entry.get("completion_tokens") or 0),
        "cost": float(entry.get("cost") or 0.0),
        "calls": int(entry.get("calls") or 0),
    }


@dataclass(slots=True)
class RunUsage:
    """A run's usage so far: totals and per model."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    calls: int = 0
    unpriced_calls: int = 0
    """Calls whose cost is unknown (model not in DUCTWORK_LLM_PRICES): budgets miss them."""
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, usage: CallUsage) -> None:
        """Count one node's usage in."""
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.calls += usage.calls
        if usage.cost is None:
            self.unpriced_calls += usage.calls
        else:
            self.cost += usage.cost
        entry = self.by_model.setdefault(
            usage.model, {"prompt_tokens": 0, "completion_tokens": 0, "cost": 0.0, "calls": 0}
        )
        entry["prompt_tokens"] += usage.prompt_tokens
        entry["completion_tokens"] += usage.completion_tokens
        entry["cost"] += usage.cost or 0.0
        entry["calls"] += usage.calls

    def dump(self) -> dict[str, Any]:
        """The JSON form stored as `Run.usage` and sent in `run_finished` events."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost": round(self.cost, 10),
            "calls": self.calls,
            "unpriced_calls": self.unpriced_calls,
            "by_model": self.by_model,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any] | None) -> RunUsage:
        """The inverse of `dump`; an empty usage for None."""
        if not data:
            return cls()
        return cls(
            prompt_tokens=int(data.get("prompt_tokens") or 0),
            completion_tokens=int(data.get("completion_tokens") or 0),
            cost=float(data.get("cost") or 0.0),
            calls=int(data.get("calls") or 0),
            unpriced_calls=int(data.get("unpriced_calls") or 0),
            by_model={
                str(model): _model_entry(entry)
                for model, entry in (data.get("by_model") or {}).items()
                if isinstance(entry, Mapping)
            },
        )


@dataclass(frozen=True, slots=True)
class UsageDay:
    """A workflow's runs created on one UTC day, with their tokens and cost summed
    (`Store.workflow_usage`; `GET /workflows/{id}/usage`)."""

    date: dt.date
    """The UTC day."""
    runs: int
    prompt_tokens: int
    completion_tokens: int
    cost: float

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def start_of_day(now: dt.datetime) -> dt.datetime:
    """00:00 UTC of `now`'s day (UTC): when a workflow's daily budget starts again,
    and where the usage API's days begin."""
    return dt.datetime.combine(now.astimezone(dt.UTC).date(), dt.time(0), tzinfo=dt.UTC)


def usage_report(workflow_id: str, since: dt.datetime, days: list[UsageDay]) -> dict[str, Any]:
    """`GET /workflows/{id}/usage`: the days with runs since `since` and their total."""
    total = {
        "runs": sum(day.runs for day in days),
        "prompt_tokens": sum(day.prompt_tokens for day in days),
        "completion_tokens": sum(day.completion_tokens for day in days),
        "total_tokens": sum(day.total_tokens for day in days),
        "cost": round(sum(day.cost for day in days), 10),
    }
    return {
        "workflow_id": workflow_id,
        "since": since.isoformat(),
        "total": total,
        "days": [
            {
                "date": day.date.isoformat(),
                "runs": day.runs,
                "prompt_tokens": day.prompt_tokens,
                "completion_tokens": day.completion_tokens,
                "total_tokens": day.total_tokens,
                "cost": round(day.cost, 10),
            }
            for day in days
        ],
    }
