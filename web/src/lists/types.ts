// The list endpoints' shapes, from the generated schema (src/api/schema.d.ts).
import type { Schemas } from "../api/client";
import { RUN_STATUSES as ALL_RUN_STATUSES, isFinished } from "../runStatus";

/** Every status the runs-list filter offers (`dead`: dead letters, whatever their status). */
export type RunStatus = Schemas["RunStatusFilter"];
export const RUN_STATUSES = [...ALL_RUN_STATUSES, "dead"] as const satisfies readonly RunStatus[];

/** The newest run of a workflow (`last_run` of `GET /workflows/`). */
export type LastRun = Schemas["LastRun"];

/** A workflow as `GET /workflows/` lists it. */
export type WorkflowSummary = Schemas["WorkflowListItem"];

/** A run as both runs lists show it: `GET /workflows/executions` items (read without events). */
export type RunSummary = Schemas["RunListItem"];


/** Whether a run can still change (so a list showing it should refresh). */
export function isUnfinished(status: string): boolean {
  return !isFinished(status);
}

/** Whether `value` names a run status. */
export function isRunStatus(value: string | null): value is RunStatus {
  return value !== null && (RUN_STATUSES as readonly string[]).includes(value);
}
