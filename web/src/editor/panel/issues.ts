// Validation problems (from `POST /workflows/validate`) sorted by where the panel shows them.
import type { ErrorSchema, RJSFSchema } from "@rjsf/utils";
import type { ValidationIssue } from "./types";

/** The node-level fields the panel draws (keys of `FieldErrors.node`). */
export const NODE_FIELDS = [
  "name",
  "id",
  "timeout_seconds",
  "on_error",
  "retry.max_attempts",
  "retry.backoff_seconds",
  "retry.backoff_factor",
  "retry.max_backoff_seconds",
] as const;
export type NodeField = (typeof NODE_FIELDS)[number];

export interface FieldErrors {
  /** rjsf `extraErrors` for the config form. */
  config: ErrorSchema;
  /** Messages per node-level field. */
  node: Partial<Record<NodeField, string[]>>;
  /** Problems no field on the panel can show, as "field: message". */
  other: string[];
}

/** `headers.X-Id` -> ["headers", "X-Id"], `to[0]` -> ["to", "0"]. */
function splitPath(path: string): string[] {
  return path
    .replace(/\[(\d+)\]/g, ".$1")
    .split(".")
    .filter((part) => part !== "");
}

function addError(schema: ErrorSchema, path: string[], message: string): void {
  let at = schema as Record<string, unknown>;
  for (const part of path) {
    const next = (at[part] ??= {}) as Record<string, unknown>;
    at = next;
  }
  ((at.__errors ??= []) as string[]).push(message);
}

/**
 * Sorts a node's problems by the field they name: `config.<path>` into an rjsf error
 * schema (`config.headers.X.Y` is the key `X.Y` of `headers`, `config.to[0]` an item),
 * node-level fields (`retry.max_attempts`, `timeout_seconds`, ...) into `node`, and
 * everything else (`type`, `edges`, a config key the form has no field for, the
 * whole `config`) into `other`, prefixed with its field. Without `schema` every
 * config path is assumed to have a field.
 */
export function fieldErrors(issues: readonly ValidationIssue[], schema?: RJSFSchema): FieldErrors {
  const out: FieldErrors = { config: {}, node: {}, other: [] };
  const properties = schema?.properties as Record<string, unknown> | undefined;
  for (const issue of issues) {
    // A whole-workflow path (`nodes[2].config.x`) names the same field as `config.x`.
    const field = (issue.field ?? "").replace(/^nodes\[\d+\]\.?/, "");
    if (field.startsWith("config.")) {
      const rest = field.slice("config.".length);
      const head = /^[^.[]*/.exec(rest)?.[0] ?? "";
      if (properties && !(head in properties)) {
        out.other.push(`${field}: ${issue.message}`);
        continue;
      }
      // After the property: `[0]` indexes a list, `.key` names one map key (which may
      // itself hold dots: `headers.X.Y` is the header `X.Y`).
      const after = rest.slice(head.length);
      const path = after.startsWith(".") ? [head, after.slice(1)] : [head, ...splitPath(after)];
      addError(out.config, path, issue.message);
    } else if ((NODE_FIELDS as readonly string[]).includes(field)) {
      (out.node[field as NodeField] ??= []).push(issue.message);
    } else {
      out.other.push(field ? `${field}: ${issue.message}` : issue.message);
    }
  }
  return out;
}
