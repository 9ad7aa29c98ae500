// A trigger type's JSON Schema (`GET /trigger-types`), reshaped for rjsf (pure: no React).
//
// Pydantic writes optional fields as `anyOf [X, null]` and the webhook's `auth` as a
// `oneOf` of `$ref`s with a discriminator; rjsf would draw both as "Option 1 / Option
// 2" choosers. Here a nullable X becomes a plain optional X, a discriminated union
// becomes the `union` field (a select of its variants, then the chosen one's fields),
// maps become key-value rows, lists of choices become checkboxes. Unlike node configs,
// trigger fields are literal values (no `{{ }}` templates): strings stay plain inputs.
import type { RJSFSchema, UiSchema } from "@rjsf/utils";
import type { Schemas } from "../api/client";

export type TriggerTypeInfo = Schemas["TriggerType"];

/** One entry of a workflow's `triggers` list. */
export type TriggerSpec = Record<string, unknown> & { type: string };

/** A variant of a discriminated union (`auth`: none, token, hmac). */
export interface UnionOption {
  value: string;
  label: string;
  description: string;
  /** The variant's fields, without the discriminator. */
  schema: RJSFSchema;
  uiSchema: UiSchema;
}

/** The `ui:options` of the `union` field. */
export interface UnionUiOptions {
  discriminator: string;
  options: UnionOption[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Labels people read, by property name (pydantic's titles are the names in Title Case). */
const LABELS: Record<string, string> = {
  id: "Trigger ID",
  inputs: "Run inputs",
  cron: "Cron expression",
  every_seconds: "Every N seconds",
  timezone: "Time zone",
  start_at: "Not before",
  end_at: "Not after",
  catch_up: "Missed slots",
  path: "Path",
  methods: "Methods",
  respond: "Respond",
  auth: "Authentication",
  headers: "Headers passed to the run",
  max_body_bytes: "Largest body (bytes)",
  rate_limit: "Rate limit",
  sync_timeout_seconds: "Sync wait (seconds)",
  credential: "Credential",
  header: "Header",
  prefix: "Prefix",
  algorithm: "Algorithm",
  encoding: "Encoding",
  style: "Style",
  timestamp_header: "Timestamp header",
  tolerance_seconds: "Tolerance (seconds)",
};

/** What each variant of a union is called in its select. */
const VARIANT_LABELS: Record<string, string> = {
  none: "None: anyone with the URL",
  token: "Shared token in a header",
  hmac: "HMAC signature of the body",
};

/** The order fields are drawn in (the rest follow in the schema's order). */
const ORDER: Record<string, string[]> = {
  schedule: ["cron", "every_seconds", "timezone", "catch_up", "start_at", "end_at", "inputs", "id", "*"],
  webhook: ["path", "methods", "respond", "auth", "headers", "inputs", "rate_limit", "max_body_bytes", "sync_timeout_seconds", "id", "*"],
};

/**
 * Defaults the server applies but its schema cannot state (pydantic's `default_factory`):
 * shown, so a webhook's form does not look as if it accepted no method at all.
 */
const IMPLIED_DEFAULTS: Record<string, unknown> = { methods: ["POST"] };

/** Strings whose examples are worth offering as suggestions (a `<datalist>`), not only as a placeholder. */
const SUGGESTED = new Set(["cron", "timezone", "credential"]);

/** "Max Body Bytes" -> "Max body bytes" (acronyms kept). */
export function sentenceCase(title: string): string {
  const words = title.split(" ");
  return words
    .map((word, index) => (index === 0 || /^[A-Z0-9]{2,}$/.test(word) ? word : word.toLowerCase()))
    .join(" ");
}

/** `#/$defs/Name` in `root`, or the schema itself when it is not a reference. */
function resolve(schema: Json, root: Json): Json {
  const ref = schema.$ref;
  if (typeof ref !== "string" || !ref.startsWith("#/$defs/")) return schema;
  const defs = isObject(root.$defs) ? root.$defs : {};
  const target = defs[ref.slice("#/$defs/".length)];
  return isObject(target) ? { ...target, ...Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "$ref")) } : schema;
}

interface Context {
  root: Json;
  /** IANA zone names offered for `timezone`. */
  zones: readonly string[];
  /** Names of stored `secret` credentials offered for `credential`. */
  credentials: readonly string[];
  /** Inside a union variant: rjsf fills no defaults there, so they are shown as placeholders. */
  nested: boolean;
}

function property(name: string, raw: Json, context: Context): { schema: Json; ui: UiSchema } {
  let prop: Json = resolve({ ...raw }, context.root);
  const ui: UiSchema = {};

  if (Array.isArray(prop.anyOf)) {
    const { anyOf, ...rest } = prop;
    const branches = (anyOf as Json[]).filter((branch) => branch.type !== "null");
    if (branches.length === 1 && isObject(branches[0])) prop = { ...resolve(branches[0], context.root), ...rest };
  }
  if (prop.default === null) delete prop.default;
  if (prop.default === undefined && name in IMPLIED_DEFAULTS) prop.default = IMPLIED_DEFAULTS[name];
  prop.title = LABELS[name] ?? sentenceCase(typeof prop.title === "string" ? prop.title : name);

  if (Array.isArray(prop.oneOf) && isObject(prop.discriminator) && typeof prop.discriminator.propertyName === "string") {
    return union(prop, prop.discriminator.propertyName, context);
  }

  // A time without an offset is read in the schedule's zone: a browser date picker
  // would turn it into UTC, so it is typed as text.
  if (prop.format === "date-time") {
    delete prop.format;
    ui["ui:placeholder"] = "e.g. 2026-12-24T09:00";
  }
  if (name === "timezone" && context.zones.length > 0) prop.examples = [...context.zones];
  if (name === "credential" && context.credentials.length > 0) prop.examples = [...context.credentials];
  if (Array.isArray(prop.examples) && !SUGGESTED.has(name)) {
    if (typeof prop.examples[0] === "string") ui["ui:placeholder"] = `e.g. ${prop.examples[0]}`;
    delete prop.examples;
  }
  if (context.nested && prop.default !== undefined && prop.type !== "boolean" && ui["ui:placeholder"] === undefined) {
    ui["ui:placeholder"] = prop.default === "" ? "(none)" : `default: ${String(prop.default)}`;
  }

  if (prop.type === "object" && !isObject(prop.properties)) {
    ui["ui:field"] = "keyValue";
    ui["ui:options"] = { valueKind: "any" };
  } else if (prop.type === "array") {
    const items = isObject(prop.items) ? prop.items : {};
    if (Array.isArray(items.enum)) {
      prop.uniqueItems = true;
      ui["ui:widget"] = "checkboxes";
      ui["ui:options"] = { inline: true };
    } else {
      ui.items = { "ui:options": { label: false } };
      ui["ui:options"] = { orderable: false, copyable: false };
    }
  }
  return { schema: prop, ui };
}

function union(prop: Json, discriminator: string, context: Context): { schema: Json; ui: UiSchema } {
  const options: UnionOption[] = [];
  for (const branch of prop.oneOf as unknown[]) {
    if (!isObject(branch)) continue;
    const variant = resolve(branch, context.root);
    const tag = isObject(variant.properties) ? variant.properties[discriminator] : undefined;
    const value = isObject(tag) && typeof tag.const === "string" ? tag.const : null;
    if (value === null) continue;
    const { schema, uiSchema } = objectForm(variant, { ...context, nested: true }, [discriminator]);
    options.push({
      value,
      label: VARIANT_LABELS[value] ?? (typeof variant.title === "string" ? variant.title : value),
      description: typeof variant.description === "string" ? variant.description : "",
      schema,
      // The union's own label and select say what this is: no second title ("auth").
      uiSchema: { ...uiSchema, "ui:options": { label: false } },
    });
  }
  const { oneOf: _oneOf, discriminator: _discriminator, ...rest } = prop;
  const options_: UnionUiOptions = { discriminator, options };
  return { schema: { ...rest, type: "object" }, ui: { "ui:field": "union", "ui:options": { ...options_ } } };
}

/** An object schema's properties reshaped, `omit` left out; title and description dropped. */
function objectForm(schema: Json, context: Context, omit: string[]): { schema: RJSFSchema; uiSchema: UiSchema } {
  const properties = isObject(schema.properties) ? schema.properties : {};
  const out: Json = {};
  const uiSchema: UiSchema = {};
  for (const [name, raw] of Object.entries(properties)) {
    if (omit.includes(name) || !isObject(raw)) continue;
    const { schema: prop, ui } = property(name, raw, context);
    out[name] = prop;
    if (Object.keys(ui).length > 0) uiSchema[name] = ui;
  }
  const required = Array.isArray(schema.required) ? schema.required.filter((name) => typeof name === "string" && name in out) : [];
  return { schema: { type: "object", properties: out, ...(required.length ? { required } : {}) } as RJSFSchema, uiSchema };
}

/**
 * The rjsf `schema` and `uiSchema` of a trigger type's form: every field but `type`
 * (fixed by the type; the panel adds it back), in a useful order. `zones` are offered
 * as suggestions for `timezone` (the browser's `Intl.supportedValuesOf("timeZone")`),
 * `credentials` for a webhook auth's `credential` (stored `secret` credentials).
 */
export function triggerForm(
  triggerType: TriggerTypeInfo,
  suggestions: { zones?: readonly string[]; credentials?: readonly string[] } = {},
): { schema: RJSFSchema; uiSchema: UiSchema } {
  const root = triggerType.config_schema as Json;
  const context: Context = { root, zones: suggestions.zones ?? [], credentials: suggestions.credentials ?? [], nested: false };
  const { schema, uiSchema } = objectForm(root, context, ["type"]);
  const names = Object.keys(schema.properties ?? {});
  const order = (ORDER[triggerType.type] ?? ["*"]).filter((name) => name === "*" || names.includes(name));
  return { schema, uiSchema: { ...uiSchema, "ui:order": order, "ui:submitButtonOptions": { norender: true } } };
}

/** A new trigger of `type`, ready to edit (the server's defaults fill in the rest). */
export function newTrigger(type: string, options: { workflowName?: string; timezone?: string; taken?: readonly string[] } = {}): TriggerSpec {
  if (type === "schedule") return { type, cron: "0 9 * * *", timezone: options.timezone || "UTC" };
  if (type === "webhook") {
    const base =
      (options.workflowName ?? "")
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "")
        .slice(0, 60) || "hook";
    const taken = new Set(options.taken ?? []);
    let path = base;
    for (let n = 2; taken.has(path); n += 1) path = `${base}-${n}`;
    return { type, path, methods: ["POST"], auth: { type: "none" } };
  }
  return { type };
}
