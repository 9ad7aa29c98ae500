// A workflow's limits (definition `settings`, WorkflowSettings in src/ductwork/models.py):
// concurrency, budgets and retention, edited field by field (pure).
import type { Schemas } from "../api/client";
import type { ValidationIssue } from "../editor/pins";

export type WorkflowLimits = Schemas["WorkflowSettings"];

/** The limit fields, by dotted path (`retention.days`). */
export type LimitField = "max_concurrent_runs" | "max_cost_per_run" | "max_cost_per_day" | "retention.days" | "retention.runs";

/** A limit's value (undefined: none set). */
export function limitValue(settings: WorkflowLimits | undefined, field: LimitField): number | undefined {
  if (field === "retention.days" || field === "retention.runs") {
    const value = settings?.retention?.[field === "retention.days" ? "days" : "runs"];
    return typeof value === "number" ? value : undefined;
  }
  const value = settings?.[field];
  return typeof value === "number" ? value : undefined;
}

/**
 * `settings` with `field` set to `value` (undefined clears it). Cleared fields are left
 * out, an empty retention too, and no settings at all is undefined: a workflow without
 * limits saves as it did before limits existed.
 */
export function withLimit(settings: WorkflowLimits | undefined, field: LimitField, value: number | undefined): WorkflowLimits | undefined {
  const next: WorkflowLimits = { ...(settings ?? {}) };
  if (field === "retention.days" || field === "retention.runs") {
    const retention = { ...(next.retention ?? {}) };
    const key = field === "retention.days" ? "days" : "runs";
    if (value === undefined) delete retention[key];
    else retention[key] = value;
    const kept = Object.entries(retention).filter(([, v]) => v !== null && v !== undefined);
    if (kept.length === 0) delete next.retention;
    else next.retention = Object.fromEntries(kept);
  } else if (value === undefined) {
    delete next[field];
  } else {
    next[field] = value;
  }
  for (const [key, v] of Object.entries(next)) if (v === null || v === undefined) delete next[key as keyof WorkflowLimits];
  return Object.keys(next).length === 0 ? undefined : next;
}

/** The validation problems of the limits, by field (`settings.retention.days` -> `retention.days`). */
export function limitIssues(issues: readonly ValidationIssue[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const issue of issues) {
    if (issue.node_id || !issue.field) continue;
    const match = /^settings(?:\.(.+))?$/.exec(issue.field);
    if (!match) continue;
    (out[match[1] ?? ""] ??= []).push(issue.message);
  }
  return out;
}
