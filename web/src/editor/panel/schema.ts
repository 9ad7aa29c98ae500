// A node type's pydantic JSON Schema, reshaped for rjsf (pure: no React).
//
// Pydantic writes optional fields as `anyOf [X, null]` and unions as `anyOf [...]`;
// rjsf would draw both as an "Option 1 / Option 2" chooser. Here a nullable X becomes
// a plain optional X, other unions go to the `alternatives` field (map / template /
// list), string maps to the `keyValue` field, free values to the `json` field, and
// every free-text string to the `template` widget (CodeMirror with `{{ }}` support).
import type { RJSFSchema, UiSchema } from "@rjsf/utils";
import type { NodeTypeInfo } from "../../canvas/definition";

/** What a string editor expects: `{{ }}` templates, or a bare Jinja expression. */
export type EditorMode = "template" | "expression";
/** The editors a union (`anyOf`) field can switch between. */
export type AlternativeKind = "map" | "text" | "list";

/** The `ui:options` our custom widgets and fields read. */
export interface PanelUiOptions {
  mode?: EditorMode;
  multiline?: boolean;
  /** keyValue: values are strings only, or any JSON (numbers kept as numbers). */
  valueKind?: "string" | "any";
  /** alternatives: the editors offered, the first is used for an empty value. */
  kinds?: AlternativeKind[];
}

type Json = Record<string, unknown>;

/**
 * Config titles that would read like the node's own fields ("Timeout seconds" is the
 * node's limit; the config's is one request's): renamed so labels stay unambiguous.
 */
const CLASHING_TITLES: Record<string, string> = { timeout_seconds: "Request time limit (seconds)" };
/** The same, where a node type's field means something else (a wait's timeout is how long it waits). */
const TYPE_TITLES: Record<string, Record<string, string>> = { wait: { timeout_seconds: "Wait at most (seconds)" } };

/**
 * Fields a node type draws with a widget of its own: a `code` node's source in the code
 * editor (CodeWidget), a `sub-workflow` node's workflow picked by name (WorkflowPickerWidget).
 */
const TYPE_WIDGETS: Record<string, Record<string, string>> = {
  code: { code: "code" },
  "sub-workflow": { workflow_id: "workflowPicker" },
};

/**
 * Fields a node type draws differently from their JSON Schema: a loop's `items` is a
 * list in the schema but usually a lone `{{ expr }}` that gives one (a native field),
 * so it is text first, with a list as the alternative.
 */
const TYPE_FIELDS: Record<string, Record<string, (prop: Json) => { schema: Json; ui: UiSchema }>> = {
  loop: {
    items: (prop) => {
      const { type: _type, items: _items, default: _default, ...rest } = prop;
      const options: PanelUiOptions = { kinds: ["text", "list"], mode: "template", multiline: false };
      return { schema: rest, ui: { "ui:field": "alternatives", "ui:options": { ...options } } };
    },
  },
};

/** Fields whose text is long: drawn as several lines. */
const MULTILINE = /prompt|body|query|message|html|text|template/i;
const ACRONYMS: Record<string, string> = { Url: "URL", Ttl: "TTL", Id: "ID", Http: "HTTP", Json: "JSON", Api: "API", Html: "HTML", Sql: "SQL" };

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Pydantic's titles ("Cache Ttl Seconds") with acronyms spelled as people write them. */
export function humanTitle(title: string): string {
  return title.replace(/\b[A-Z][a-z]+\b/g, (word) => ACRONYMS[word] ?? word);
}

function kindOf(branch: Json): AlternativeKind | null {
  if (branch.type === "object") return "map";
  if (branch.type === "string" && !("enum" in branch)) return "text";
  if (branch.type === "array" && isObject(branch.items) && branch.items.type === "string") return "list";
  return null;
}

function isStringMap(prop: Json): boolean {
  if (prop.type !== "object" || (isObject(prop.properties) && Object.keys(prop.properties).length > 0)) return false;
  const extra = prop.additionalProperties;
  return extra === true || (isObject(extra) && (extra.type === "string" || Object.keys(extra).length === 0));
}

/** One property: its rjsf schema and uiSchema. */
function normaliseProperty(name: string, raw: Json, mode: EditorMode, titles: Record<string, string>): { schema: Json; ui: UiSchema } {
  let prop: Json = { ...raw };
  if (typeof prop.title === "string") prop.title = titles[name] ?? humanTitle(prop.title);
  const multiline = mode === "template" && MULTILINE.test(name);

  if (Array.isArray(prop.anyOf)) {
    const { anyOf, ...rest } = prop;
    const branches = (anyOf as Json[]).filter((branch) => branch.type !== "null");
    if (branches.length === 1) {
      // `anyOf [X, null]`: an optional X (leaving it empty means "use the default").
      prop = { ...branches[0], ...rest };
      if (prop.default === null) delete prop.default;
    } else {
      const kinds = branches.map(kindOf);
      delete rest.default;
      if (kinds.every((kind): kind is AlternativeKind => kind !== null)) {
        const options: PanelUiOptions = { kinds, mode, multiline };
        return { schema: rest, ui: { "ui:field": "alternatives", "ui:options": { ...options } } };
      }
      return { schema: rest, ui: { "ui:field": "json" } };
    }
  }

  if (prop.default === null) delete prop.default;
  const placeholder = Array.isArray(prop.examples) && typeof prop.examples[0] === "string" ? `e.g. ${prop.examples[0]}` : undefined;

  if (prop.type === undefined) return { schema: prop, ui: { "ui:field": "json" } };
  if (isStringMap(prop)) {
    const extra = prop.additionalProperties;
    const options: PanelUiOptions = { mode, valueKind: isObject(extra) && extra.type === "string" ? "string" : "any" };
    return { schema: prop, ui: { "ui:field": "keyValue", "ui:options": { ...options } } };
  }
  if (prop.type === "string" && !("enum" in prop)) {
    const options: PanelUiOptions = { mode, multiline };
    return { schema: prop, ui: { "ui:widget": "template", "ui:options": { ...options }, ...(placeholder ? { "ui:placeholder": placeholder } : {}) } };
  }
  if (prop.type === "array") {
    const items = isObject(prop.items) ? prop.items : {};
    // Items are named after the list ("Expected Status-1") for screen readers only.
    const itemUi: UiSchema =
      items.type === "string" && !("enum" in items)
        ? { "ui:widget": "template", "ui:options": { mode, multiline: false, label: false } }
        : { "ui:options": { label: false } };
    return { schema: prop, ui: { items: itemUi, "ui:options": { orderable: false, copyable: false } } };
  }
  return { schema: prop, ui: placeholder ? { "ui:placeholder": placeholder } : {} };
}

/**
 * The rjsf `schema` and `uiSchema` for a node type's `config_schema`: nullable fields
 * as optional fields, unions as a map/template/list switch, string maps as key-value
 * rows, free JSON as a code field, strings as template editors (expression editors for
 * the type's `expression_fields`, several lines for prompts and bodies). The root's
 * title and description are dropped: the panel shows the type's own.
 */
export function uiSchemaFor(
  schema: Json | undefined,
  nodeType?: (Pick<NodeTypeInfo, "expression_fields"> & { type?: string }) | undefined,
): { schema: RJSFSchema; uiSchema: UiSchema } {
  const expressions = new Set(nodeType?.expression_fields ?? []);
  const titles = { ...CLASHING_TITLES, ...(TYPE_TITLES[nodeType?.type ?? ""] ?? {}) };
  const widgets = TYPE_WIDGETS[nodeType?.type ?? ""] ?? {};
  const properties = isObject(schema?.properties) ? schema.properties : {};
  const outProps: Json = {};
  const uiSchema: UiSchema = { "ui:submitButtonOptions": { norender: true } };
  for (const [name, raw] of Object.entries(properties)) {
    if (!isObject(raw)) continue;
    const special = TYPE_FIELDS[nodeType?.type ?? ""]?.[name];
    const { schema: prop, ui } = special
      ? special({ ...raw, ...(typeof raw.title === "string" ? { title: humanTitle(raw.title) } : {}) })
      : normaliseProperty(name, raw, expressions.has(name) ? "expression" : "template", titles);
    outProps[name] = prop;
    // Source code (`contentMediaType: text/x-python`, a hint a node type may give) is not a template.
    const isCode = typeof raw.contentMediaType === "string" && raw.contentMediaType.startsWith("text/x-");
    const widget = widgets[name] ?? (isCode ? "code" : undefined);
    if (widget !== undefined && prop.type === "string") uiSchema[name] = { "ui:widget": widget };
    else if (Object.keys(ui).length > 0) uiSchema[name] = ui;
  }
  const { title: _title, description: _description, ...root } = schema ?? {};
  return { schema: { ...root, type: "object", properties: outProps } as RJSFSchema, uiSchema };
}

/** The properties whose value is free JSON (`json` field): kept even when `{}` or `[]`. */
export function freeFields(uiSchema: UiSchema): Set<string> {
  return new Set(
    Object.entries(uiSchema)
      .filter(([, ui]) => isObject(ui) && ui["ui:field"] === "json")
      .map(([name]) => name),
  );
}
