// A run's status: the values and the one rule of which are finished, for every page.
import type { Schemas } from "./api/client";

export type RunStatus = Schemas["RunStatus"];

export const RUN_STATUSES = [
  "queued",
  "running",
  "waiting",
  "success",
  "error",
  "cancelled",
] as const satisfies readonly RunStatus[];

const FINISHED: ReadonlySet<string> = new Set<RunStatus>(["success", "error", "cancelled"]);

/** Whether a run has ended (the server sends nothing more; it can be retried, not cancelled). */
export function isFinished(status: string | null | undefined): boolean {
  return status != null && FINISHED.has(status);
}
