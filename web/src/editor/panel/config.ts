// The config a form edit leaves behind (pure): only what the person set.
import type { RJSFSchema } from "@rjsf/utils";

type Json = Record<string, unknown>;

function isEmpty(value: unknown): boolean {
  if (value === undefined || value === "") return true;
  if (Array.isArray(value)) return value.length === 0;
  return typeof value === "object" && value !== null && Object.keys(value).length === 0;
}

/** Structural equality of JSON values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((key) => jsonEqual((a as Json)[key], (b as Json)[key]));
}

/**
 * The node's new `config` from the form's data. rjsf fills in every default; a key the
 * node did not have and that still holds its default is dropped, and so is any key
 * cleared to empty (`undefined`, `""`, `{}`, `[]`), so the server's defaults apply.
 * Free-JSON fields (`free`) keep `{}`, `[]` and `null`: there they are values.
 */
export function nextConfig(
  previous: Json | undefined,
  formData: Json | undefined,
  schema: RJSFSchema,
  free: ReadonlySet<string> = new Set(),
): Json {
  const before = previous ?? {};
  const properties = (schema.properties ?? {}) as Record<string, Json | boolean>;
  const out: Json = {};
  for (const [key, value] of Object.entries(formData ?? {})) {
    if (value === undefined) continue;
    if (!free.has(key) && isEmpty(value)) continue;
    const prop = properties[key];
    const hasDefault = typeof prop === "object" && "default" in prop;
    if (!(key in before) && hasDefault && jsonEqual(value, prop.default)) continue;
    out[key] = value;
  }
  return out;
}
