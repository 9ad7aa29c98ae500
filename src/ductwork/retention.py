"""Retention policy: which finished runs may be deleted (pure; no I/O).

The policy is written once, here: `prune_plan` turns the DUCTWORK_RETENTION_*
settings and each workflow's `settings.retention` into a `PrunePlan` of concrete
rules (a cutoff time, a number of runs to keep) per workflow. A store's
`prune_runs(plan, limit)` then only deletes what a plan's rules match; it decides
nothing about settings, overrides or clocks. See docs/retention.md.

Kept while needed: on top of a plan's rules, every store's `prune_runs` and
`count_prunable_runs` keep

- a run with `error_workflow_pending` (failed, its error workflow not started
  yet: the sweep starts it from the run, so deleting the run would lose it);
- a child run (`parent_execution_id`) whose parent run exists and is unfinished:
  a parent node re-run after a crash looks its child up; without it, it would
  start a second child and repeat its side effects. A child whose parent is
  finished or gone follows the rules like any run.

Such runs are never candidates, so they cannot stall a prune (a batch that
deletes fewer runs than its limit ends it). They still count towards
`keep_last`. `Store.delete_run` (an explicit DELETE) does not apply this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from ductwork.models import RetentionPolicy, Workflow
from ductwork.usage import start_of_day


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Which finished runs of a workflow go; a run matching either condition goes.

    Never an unfinished run (queued, running, waiting): stores check the status in
    the same write that deletes. Never a run other state still depends on either
    (see "Kept while needed" in this module's docstring), whatever its age or rank.
    """

    finished_before: datetime | None = None
    """Runs that finished (`end_time`; `created_at` when it is unset) before this."""
    keep_last: int | None = None
    """Runs beyond the newest `keep_last` finished runs of their workflow, newest by
    (`created_at`, `execution_id`) like `Store.find_runs`."""
    kept_since: datetime | None = None
    """Whatever the two rules say, runs created at or after this stay (they still count
    towards `keep_last`): today's runs (since 00:00 UTC) of a workflow with a
    `max_cost_per_day`, whose spend the budget sums from the run rows."""

    @property
    def deletes_anything(self) -> bool:
        """False for the rule that keeps every run."""
        return self.finished_before is not None or self.keep_last is not None


KEEP_ALL = RetentionRule()


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """The rule of every workflow: its own from `overrides`, else `default`.

    `default` also covers runs of deleted workflows and unsaved runs (`file:`
    workflow ids of the CLI's `run`), which no stored workflow describes.
    """

    default: RetentionRule = KEEP_ALL
    overrides: Mapping[str, RetentionRule] = field(default_factory=dict)

    @property
    def deletes_anything(self) -> bool:
        """False when no rule can delete a run (nothing to prune, skip the queries)."""
        return self.default.deletes_anything or any(
            rule.deletes_anything for rule in self.overrides.values()
        )

    def groups(self) -> list[tuple[RetentionRule, list[str]]]:
        """The overrides grouped by rule (stores query a group with one `IN`), sorted."""
        grouped: dict[RetentionRule, list[str]] = {}
        for workflow_id, rule in sorted(self.overrides.items()):
            grouped.setdefault(rule, []).append(workflow_id)
        return list(grouped.items())

    def rule_for(self, workflow_id: str) -> RetentionRule:
        """The rule that applies to the runs of `workflow_id`."""
        return self.overrides.get(workflow_id, self.default)


def rule(days: float | None, runs: int | None, now: datetime) -> RetentionRule:
    """A rule from a number of days (cut off at `now - days`) and of runs to keep."""
    return RetentionRule(
        finished_before=None if days is None else now - timedelta(days=days),
        keep_last=runs,
    )


def needs_own_rule(workflow: Workflow) -> bool:
    """Whether `prune_plan` may give `workflow` a rule of its own (the pruner reads
    only these workflows): it sets `retention` or `max_cost_per_day`."""
    settings = workflow.definition.settings
    return settings.retention is not None or settings.max_cost_per_day is not None


def prune_plan(
    days: float | None,
    runs: int | None,
    workflows: Iterable[Workflow],
    now: datetime,
) -> PrunePlan:
    """The plan for the global `days`/`runs` (DUCTWORK_RETENTION_DAYS / _RUNS) at `now`.

    A workflow's `settings.retention` overrides each field it sets; fields it leaves
    unset fall back to the global ones. A workflow with a `max_cost_per_day` keeps its
    runs created today (UTC): pruning them would erase the spend its budget counts
    (`Store.workflow_cost_since`). Only workflows whose rule differs from the default
    get an entry in `overrides`.
    """
    default = rule(days, runs, now)
    overrides: dict[str, RetentionRule] = {}
    for workflow in workflows:
        settings = workflow.definition.settings
        policy: RetentionPolicy | None = settings.retention
        if policy is None and settings.max_cost_per_day is None:
            continue
        own = rule(
            policy.days if policy is not None and policy.days is not None else days,
            policy.runs if policy is not None and policy.runs is not None else runs,
            now,
        )
        if settings.max_cost_per_day is not None:
            own = replace(own, kept_since=start_of_day(now))
        if own != default:
            overrides[workflow.id] = own
    return PrunePlan(default=default, overrides=overrides)
