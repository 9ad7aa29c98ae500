// The list endpoints' shapes as the runs-list API serves them. schema.d.ts gains these
// fields with the runs-list API; until it is regenerated these local types describe them.
import type { Workflow } from "../api/client";

/** Every status a run can have, as the runs-list filter offers them. */
export const RUN_STATUSES = ["queued", "running", "waiting", "success", "error", "cancelled", "dead"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** The newest run of a workflow (`last_run` of `GET /workflows/`). */
export interface LastRun {
  execution_id: string;
  status: RunStatus;
  created_at: string;
  start_time: string | null;
  end_time: string | null;
}

/** A workflow as `GET /workflows/` lists it. */
export type WorkflowSummary = Workflow & { last_run?: LastRun | null };

/** A run as `GET /workflows/executions` and `GET /workflows/{id}/executions` list it. */
export interface RunSummary {
  execution_id: string;
  workflow_id: string;
  workflow_name?: string | null;
  workflow_version: number;
  status: RunStatus;
  trigger?: { type: string } | null;
  created_at: string;
  start_time: string | null;
  end_time: string | null;
  error: string | null;
  dead_letter?: boolean | null;
}

const UNFINISHED: ReadonlySet<string> = new Set(["queued", "running", "waiting"]);

/** Whether a run can still change (so a list showing it should refresh). */
export function isUnfinished(status: string): boolean {
  return UNFINISHED.has(status);
}

/** Whether `value` names a run status. */
export function isRunStatus(value: string | null): value is RunStatus {
  return value !== null && (RUN_STATUSES as readonly string[]).includes(value);
}
