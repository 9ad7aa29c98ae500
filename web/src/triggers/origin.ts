// What started a run (its `trigger`), as the runs lists and the run page show it (pure).
//
// The shapes are Run.trigger's (src/ductwork/models.py): `{type: "manual"}`,
// `{type: "schedule", key, slot}` (slot: the ISO time it was due), `{type: "webhook",
// path, method}`, `{type: "error", execution_id, workflow_id}` (the error workflow of
// that failed run). Runs stored before triggers were recorded have none.
import type { Schemas } from "../api/client";

/** The trigger types the runs lists filter by (`?trigger=` of GET /workflows/executions). */
export const TRIGGER_TYPES = ["manual", "schedule", "webhook", "error"] as const satisfies readonly Schemas["RunTriggerType"][];
export type TriggerTypeName = (typeof TRIGGER_TYPES)[number];

/** Whether `value` is a trigger type the lists filter by. */
export function isTriggerType(value: string | null): value is TriggerTypeName {
  return value !== null && (TRIGGER_TYPES as readonly string[]).includes(value);
}

/** A run's origin, broken into what the pages draw. */
export interface RunOrigin {
  /** The trigger's type (`manual`, `schedule`, ...; any other string a newer server sends). */
  type: string;
  /** A schedule's slot: the ISO time the run was due. */
  slot: string | null;
  /** A schedule's key (its `id`, or a digest of its timing). */
  scheduleKey: string | null;
  /** A webhook's request: `POST /hooks/new-signup`. */
  request: string | null;
  /** An error workflow's run: the failed run it handles, and that run's workflow. */
  failedRun: string | null;
  failedWorkflow: string | null;
}

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

/** The origin of a run from its `trigger` (null when the run has none). */
export function runOrigin(trigger: unknown): RunOrigin | null {
  if (typeof trigger !== "object" || trigger === null) return null;
  const raw = trigger as Record<string, unknown>;
  const type = text(raw.type);
  if (type === null) return null;
  const path = text(raw.path);
  return {
    type,
    slot: type === "schedule" ? text(raw.slot) : null,
    scheduleKey: type === "schedule" ? text(raw.key) : null,
    request: type === "webhook" && path !== null ? `${text(raw.method) ?? "POST"} /hooks/${path.replace(/^\/+/, "")}` : null,
    failedRun: type === "error" ? text(raw.execution_id) : null,
    failedWorkflow: type === "error" ? text(raw.workflow_id) : null,
  };
}

/**
 * The origin in one line of text (titles, screen readers, the CLI's wording):
 * "manual", "schedule 2026-12-03 07:40:00", "webhook POST /hooks/new-signup",
 * "error of 3f2a1b2c". `formatTime` renders the slot (the page's locale in the app).
 */
export function originText(origin: RunOrigin | null, formatTime: (iso: string) => string = (iso) => iso): string {
  if (origin === null) return "unknown";
  if (origin.slot !== null) return `${origin.type} ${formatTime(origin.slot)}`;
  if (origin.request !== null) return `${origin.type} ${origin.request}`;
  if (origin.failedRun !== null) return `${origin.type} of ${origin.failedRun.slice(0, 8)}`;
  return origin.type;
}
