// Validation problems of a workflow's triggers and error workflow (pure).
//
// `POST /workflows/validate` and a refused save name trigger problems by path, with no
// node: `triggers[0].cron`, `triggers[1].auth.credential`, `triggers[2]` (the whole
// trigger), `triggers` (the list), and `error_workflow_id`. Pydantic's spelling
// (`triggers.0.cron`) is read too.
import type { ErrorSchema, RJSFSchema, UiSchema } from "@rjsf/utils";
import type { ValidationIssue } from "../editor/pins";
import type { UnionUiOptions } from "./schema";

const TRIGGER_PATH = /^triggers(?:\[(\d+)\]|\.(\d+))(?:\.(.*))?$/;

/** A problem of one trigger: `field` relative to it (`cron`, `auth.credential`), null for the whole. */
export interface TriggerIssue {
  field: string | null;
  message: string;
}

export interface SettingsIssues {
  /** Problems by trigger index. */
  byTrigger: Record<number, TriggerIssue[]>;
  /** Problems of the list itself (too many triggers). */
  list: string[];
  /** Problems of `error_workflow_id`. */
  errorWorkflow: string[];
}

/** Where a problem belongs in the workflow settings, or null when it is not theirs. */
export function settingsPlace(field: string | null | undefined): { trigger: number; field: string | null } | "list" | "error-workflow" | null {
  if (!field) return null;
  if (field === "error_workflow_id") return "error-workflow";
  if (field === "triggers") return "list";
  const match = TRIGGER_PATH.exec(field);
  if (!match) return null;
  return { trigger: Number(match[1] ?? match[2]), field: match[3] ?? null };
}

/** The problems of the workflow settings among `issues` (problems of nodes are left out). */
export function settingsIssues(issues: readonly ValidationIssue[]): SettingsIssues {
  const out: SettingsIssues = { byTrigger: {}, list: [], errorWorkflow: [] };
  for (const issue of issues) {
    if (issue.node_id) continue;
    const place = settingsPlace(issue.field);
    if (place === null) continue;
    if (place === "list") out.list.push(issue.message);
    else if (place === "error-workflow") out.errorWorkflow.push(issue.message);
    else (out.byTrigger[place.trigger] ??= []).push({ field: place.field, message: issue.message });
  }
  return out;
}

function add(schema: ErrorSchema, path: string[], message: string): void {
  let at = schema as Record<string, unknown>;
  for (const part of path) at = (at[part] ??= {}) as Record<string, unknown>;
  ((at.__errors ??= []) as string[]).push(message);
}

/**
 * A trigger's problems as rjsf `extraErrors` for its form, and the ones no field shows
 * ("field: message", or the message alone for the whole trigger). A list's item
 * (`methods[1]`) is shown on the list; a union's field (`auth.credential`) on that
 * field when one of the union's variants has it, else on the union.
 */
export function triggerErrorSchema(issues: readonly TriggerIssue[], schema: RJSFSchema, uiSchema: UiSchema): { errors: ErrorSchema; other: string[] } {
  const errors: ErrorSchema = {};
  const other: string[] = [];
  const properties = (schema.properties ?? {}) as Record<string, unknown>;
  for (const { field, message } of issues) {
    if (field === null) {
      other.push(message);
      continue;
    }
    const head = /^[^.[]*/.exec(field)?.[0] ?? "";
    if (!(head in properties)) {
      other.push(`${field}: ${message}`);
      continue;
    }
    const rest = field.slice(head.length).replace(/^\./, "");
    const union = (uiSchema[head] as { "ui:field"?: string; "ui:options"?: UnionUiOptions } | undefined) ?? {};
    if (rest !== "" && union["ui:field"] === "union") {
      const child = /^[^.[]*/.exec(rest)?.[0] ?? "";
      const known = (union["ui:options"]?.options ?? []).some((option) => child in ((option.schema.properties ?? {}) as object));
      if (known) add(errors, [head, child], message);
      else add(errors, [head], `${rest}: ${message}`);
      continue;
    }
    add(errors, [head], rest === "" || rest.startsWith("[") ? message : `${rest}: ${message}`);
  }
  return { errors, other };
}
