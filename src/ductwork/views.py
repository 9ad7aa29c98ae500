"""JSON shapes of workflows and runs as clients see them (SEED.md's fields first).

Shared by the API and the CLI. `logs` and `errors` are read off the run's events.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ductwork.models import Event, NodeState, Run, RunStatus, RunSummary, Workflow
from ductwork.security.resume_links import LINK_FIELD, links_visible

_SEED_MESSAGES = {
    "run_started": "Run started",
    "node_skipped": "Skipped: no active incoming edge",
    "node_cancelled": "Cancelled",
}


def log_message(event: Event) -> tuple[str, str] | None:
    """(level, message) for an event, or None when it is not a log line (token deltas)."""
    data = event.data
    kind = event.type
    if kind == "log":
        return str(data.get("level", "info")), str(data.get("message", ""))
    if kind == "node_started":
        attempt = data.get("attempt", 1)
        suffix = f" (attempt {attempt})" if attempt and attempt > 1 else ""
        return "info", f"Executing {data.get('type', '')} node{suffix}"
    if kind == "node_completed":
        cached = " (cached)" if data.get("cached") else ""
        branch = f", took branch {data['branch']!r}" if data.get("branch") is not None else ""
        # A node woken from a park (delay, wait) has no latency of its own to report.
        latency = data.get("latency_ms")
        took = f" in {latency} ms" if latency is not None else ""
        return "info", f"Completed{took}{cached}{branch}"
    if kind == "node_failed":
        return "error", f"Failed after {data.get('attempt')} attempt(s): {data.get('error')}"
    if kind == "node_retrying":
        return (
            "warning",
            f"Attempt {data.get('attempt')} failed: {data.get('error')}; "
            f"retrying in {data.get('delay_seconds')} s",
        )
    if kind == "run_waiting":
        return "info", f"Run waiting until {data.get('wake_at')}"
    if kind == "run_failed":
        return "error", f"Run failed for good (dead letter): {data.get('error')}"
    if kind == "run_finished":
        error = f": {data['error']}" if data.get("error") else ""
        level = "error" if data.get("status") == "error" else "info"
        return level, f"Run finished with status {data.get('status')}{error}"
    if kind in _SEED_MESSAGES:
        return "info", _SEED_MESSAGES[kind]
    return None


def _slot_text(slot: Any) -> str:
    """A schedule slot as `2026-12-03T07:40:00Z` (UTC), or as stored when it is not a time."""
    try:
        when = datetime.fromisoformat(str(slot))
    except ValueError:
        return str(slot)
    if when.tzinfo is None:
        return when.isoformat()
    text = when.astimezone(UTC).isoformat().removesuffix("+00:00")
    return f"{text}Z"


def origin_text(trigger: Mapping[str, Any] | None, *, short: bool = True) -> str:
    """What started a run, in a few words (`Run.trigger`'s shapes).

    `manual`, `schedule 2026-12-03T07:40:00Z`, `webhook POST /hooks/new-signup`,
    `error of 3f2a1c0e…` (with `short`; the whole failed run id otherwise),
    `sub-workflow call of 3f2a1c0e…` (the parent's node and run); `-` for a
    run stored before triggers were recorded; another type by its name.
    """
    if not trigger:
        return "-"
    kind = str(trigger.get("type", "-"))
    if kind == "schedule":
        slot = trigger.get("slot")
        return "schedule" if slot is None else f"schedule {_slot_text(slot)}"
    if kind == "webhook":
        path = str(trigger.get("path") or "")
        if not path.startswith("/"):
            path = f"/hooks/{path}"
        method = trigger.get("method")
        return f"webhook {method} {path}" if method else f"webhook {path}"
    if kind in ("error", "sub-workflow"):
        other = str(trigger.get("execution_id") or "?")
        if short and len(other) > 8:
            other = other[:8] + "…"
        if kind == "error":
            return f"error of {other}"
        return f"sub-workflow {trigger.get('node_id') or '?'} of {other}"
    return kind


def logs_of(run: Run) -> list[dict[str, Any]]:
    """SEED.md's `logs`: [{timestamp, node_id, level, message}]."""
    lines = []
    for event in run.events:
        rendered = log_message(event)
        if rendered is not None:
            lines.append(
                {
                    "timestamp": event.timestamp.isoformat(),
                    "node_id": event.node_id,
                    "level": rendered[0],
                    "message": rendered[1],
                }
            )
    return lines


def errors_of(run: Run) -> list[dict[str, Any]]:
    """SEED.md's `errors`: the final failure of each node, and the run's own error."""
    errors = [
        {
            "timestamp": event.timestamp.isoformat(),
            "node_id": event.node_id,
            "error": event.data.get("error"),
            "attempt": event.data.get("attempt"),
        }
        for event in run.events
        if event.type == "node_failed"
    ]
    if run.error and not any(run.error.endswith(str(e["error"])) for e in errors):
        errors.append(
            {
                "timestamp": run.end_time.isoformat() if run.end_time else None,
                "node_id": None,
                "error": run.error,
                "attempt": None,
            }
        )
    return errors


def node_state_view(state: NodeState) -> dict[str, Any]:
    """One `node_states` entry: the seed's status/output/cached/latency_ms and the rest.

    A wait node's `resume_url` is left out for a principal that may not resume the
    run (`ductwork.security.resume_links`): every run view passes here.
    """
    view: dict[str, Any] = {
        "status": state.status.value,
        "output": state.output,
        "cached": state.cached,
        "latency_ms": state.latency_ms,
        "error": state.error,
        "attempts": state.attempts,
        "started_at": state.started_at.isoformat() if state.started_at else None,
        "finished_at": state.finished_at.isoformat() if state.finished_at else None,
    }
    if state.branch is not None:
        view["branch"] = state.branch
    if state.wake_at is not None:
        view["wake_at"] = state.wake_at.isoformat()
    meta = state.meta
    if meta:
        view.update({k: v for k, v in meta.items() if k not in view})
        if LINK_FIELD in meta and not links_visible():
            del view[LINK_FIELD]
    return view


def _ordered_states(run: Run) -> dict[str, Any]:
    """Node states in the definition's node order (what a reader of the workflow expects)."""
    states = run.node_states
    ordered = {n.id: node_state_view(states[n.id]) for n in run.definition.nodes if n.id in states}
    for node_id, state in states.items():  # states of nodes a retry's new definition dropped
        if node_id not in ordered:
            ordered[node_id] = node_state_view(state)
    return ordered


def run_view(run: Run, *, include_definition: bool = False) -> dict[str, Any]:
    """GET /workflows/executions/{id}: SEED.md's fields plus result, error and version."""
    view: dict[str, Any] = {
        "execution_id": run.execution_id,
        "workflow_id": run.workflow_id,
        "workflow_version": run.workflow_version,
        "status": run.status.value,
        "start_time": run.start_time.isoformat() if run.start_time else None,
        "end_time": run.end_time.isoformat() if run.end_time else None,
        "created_at": run.created_at.isoformat(),
        "variables": run.variables,
        "node_states": _ordered_states(run),
        "result": run.result,
        "error": run.error,
        "logs": logs_of(run),
        "errors": errors_of(run),
        "trigger": run.trigger,
        "parent_execution_id": run.parent_execution_id,
        "parent_node_id": run.parent_node_id,
        "depth": run.depth,
        "usage": run.usage,
        "cost": run.cost,
    }
    if run.wake_at is not None:
        view["wake_at"] = run.wake_at.isoformat()
    if run.redrives:
        view["redrives"] = run.redrives
    if run.dead_letter:
        view["dead_letter"] = True
    if run.queued_reason is not None and run.status is RunStatus.QUEUED:
        view["queued_reason"] = run.queued_reason
    if run.lease_owner is not None and run.status in (RunStatus.RUNNING, RunStatus.WAITING):
        # Not for a queued run: one this process created is leased to it from its insert
        # (`Executor.lease_new_run`), before any worker works on it.
        view["worker"] = run.lease_owner
    if include_definition:
        view["definition"] = run.definition.dump()
    return view


def run_list_item(run: Run) -> dict[str, Any]:
    """One run of `GET /workflows/executions`: the run view (read without events, so
    `logs` holds none) plus the workflow's name as the run knows it, and `dead_letter`
    always present."""
    view = run_view(run)
    view["workflow_name"] = run.definition.name
    view["dead_letter"] = run.dead_letter
    return view


def run_summary_view(summary: RunSummary) -> dict[str, Any]:
    """A workflow's `last_run`."""
    return {
        "execution_id": summary.execution_id,
        "status": summary.status.value,
        "created_at": summary.created_at.isoformat(),
        "start_time": summary.start_time.isoformat() if summary.start_time else None,
        "end_time": summary.end_time.isoformat() if summary.end_time else None,
    }


def workflow_view(workflow: Workflow, last_run: RunSummary | None) -> dict[str, Any]:
    """A workflow as `GET /workflows/` lists it: `Workflow.public()` plus its last run."""
    view = workflow.public()
    view["last_run"] = None if last_run is None else run_summary_view(last_run)
    return view


_MESSAGES = {
    "queued": "Workflow execution queued",
    "running": "Workflow execution is running",
    "waiting": "Workflow execution is waiting (parked on a delay or a wait node)",
    "success": "Workflow execution completed",
    "error": "Workflow execution failed",
    "cancelled": "Workflow execution cancelled",
}


def execute_view(run: Run, *, created: bool = True) -> dict[str, Any]:
    """POST /workflows/{id}/execute: SEED.md's response fields, plus the outcome when known."""
    started = run.start_time or run.created_at
    view: dict[str, Any] = {
        "execution_id": run.execution_id,
        "workflow_id": run.workflow_id,
        "status": run.status.value,
        "message": _MESSAGES[run.status.value]
        + ("" if created else " (existing run for this Idempotency-Key)"),
        "started_at": started.isoformat(),
    }
    if run.status.finished:
        view["end_time"] = run.end_time.isoformat() if run.end_time else None
        view["result"] = run.result
        view["error"] = run.error
        view["node_states"] = _ordered_states(run)
        view["usage"] = run.usage
        view["cost"] = run.cost
    return view
