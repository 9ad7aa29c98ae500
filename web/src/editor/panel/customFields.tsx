// rjsf fields for what plain JSON Schema forms draw badly: maps, unions and free JSON.
import type { ErrorSchema, FieldProps, RegistryFieldsType } from "@rjsf/utils";
import { useEffect, useRef, useState } from "react";
import { jsonEqual } from "./config";
import { labelId } from "./formTemplates";
import { KeyValueEditor, ListEditor } from "./KeyValueEditor";
import type { AlternativeKind, PanelUiOptions } from "./schema";
import { TemplateEditor } from "./TemplateEditor";

type Json = Record<string, unknown>;

function optionsOf(props: FieldProps): PanelUiOptions {
  return (props.uiSchema?.["ui:options"] ?? {}) as PanelUiOptions;
}

function labelOf(props: FieldProps): string {
  return String(props.uiSchema?.["ui:title"] ?? props.schema.title ?? props.name);
}

/** `{key: {__errors: [...]}}` -> `{key: [...]}` (one level: map keys or list indexes). */
function childErrors(errorSchema: ErrorSchema | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [key, child] of Object.entries(errorSchema ?? {})) {
    const messages = (child as { __errors?: string[] } | undefined)?.__errors;
    if (key !== "__errors" && messages?.length) out[key] = messages;
  }
  return out;
}

function isMap(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `additionalProperties` objects (headers, mappings) as key + value rows. */
export function KeyValueField(props: FieldProps<Json>) {
  const { formData, onChange, fieldPathId, disabled, readonly, errorSchema } = props;
  const options = optionsOf(props);
  return (
    <KeyValueEditor
      value={formData}
      onChange={(next) => onChange(next, fieldPathId.path)}
      label={labelOf(props)}
      labelledBy={labelId(fieldPathId.$id)}
      anyJson={options.valueKind === "any"}
      mode={options.mode}
      disabled={disabled || readonly}
      errors={childErrors(errorSchema)}
    />
  );
}

const KIND_LABELS: Record<AlternativeKind, string> = { map: "Key-value pairs", text: "Text", list: "List" };

function kindOfValue(value: unknown, kinds: AlternativeKind[]): AlternativeKind {
  const actual: AlternativeKind | null = isMap(value) ? "map" : Array.isArray(value) ? "list" : typeof value === "string" ? "text" : null;
  return actual && kinds.includes(actual) ? actual : (kinds[0] ?? "text");
}

/**
 * A union (`anyOf [object, string]`, `anyOf [string, string[]]`): a select of the
 * editors it allows, then that editor. The choice follows the value when it changes
 * from outside; switching clears the value (a map does not become a string).
 */
export function AlternativesField(props: FieldProps) {
  const { formData, onChange, fieldPathId, disabled, readonly, errorSchema } = props;
  const options = optionsOf(props);
  const kinds = options.kinds ?? ["text"];
  const [kind, setKind] = useState<AlternativeKind>(() => kindOfValue(formData, kinds));
  useEffect(() => {
    if (formData !== undefined) setKind(kindOfValue(formData, kinds));
    // kinds come from the schema, fixed for this field's life.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [formData]);
  const label = labelOf(props);
  const off = disabled || readonly;
  const set = (value: unknown) => onChange(value, fieldPathId.path);
  return (
    <div role="group" aria-labelledby={labelId(fieldPathId.$id)} className="dw-alternatives">
      <select
        className="dw-input dw-alternatives-kind"
        aria-label={`${label} format`}
        value={kind}
        disabled={off}
        onChange={(event) => {
          setKind(event.target.value as AlternativeKind);
          set(undefined);
        }}
      >
        {kinds.map((option) => (
          <option key={option} value={option}>
            {KIND_LABELS[option]}
          </option>
        ))}
      </select>
      {kind === "map" ? (
        <KeyValueEditor
          value={isMap(formData) ? formData : undefined}
          onChange={set}
          label={label}
          anyJson
          mode={options.mode}
          disabled={off}
          errors={childErrors(errorSchema)}
        />
      ) : kind === "list" ? (
        <ListEditor
          value={Array.isArray(formData) ? formData.map(String) : []}
          onChange={set}
          label={label}
          mode={options.mode}
          disabled={off}
          errors={childErrors(errorSchema)}
        />
      ) : (
        <TemplateEditor
          id={fieldPathId.$id}
          label={label}
          value={typeof formData === "string" ? formData : ""}
          onChange={(text) => set(text === "" ? undefined : text)}
          mode={options.mode}
          multiline={options.multiline}
          readOnly={off}
          invalid={!!errorSchema?.__errors?.length}
        />
      )}
    </div>
  );
}

/** Whether the editor's text already stands for `value` (so an echo does not reformat it). */
function describes(text: string, value: unknown): boolean {
  if (text.trim() === "") return value === undefined;
  try {
    return jsonEqual(JSON.parse(text), value);
  } catch {
    return false;
  }
}

function formatJson(value: unknown): string {
  return value === undefined ? "" : JSON.stringify(value, null, 2);
}

/**
 * Free JSON (`end.output`, `webhook.body`): a code field whose text is parsed on each
 * edit; text that is not JSON stays local with a message, and empty text clears it.
 */
export function JsonField(props: FieldProps) {
  const { formData, onChange, fieldPathId, disabled, readonly, errorSchema } = props;
  const [text, setText] = useState(() => formatJson(formData));
  const [problem, setProblem] = useState<string | null>(null);
  const shown = useRef(text);
  shown.current = text;
  useEffect(() => {
    if (describes(shown.current, formData)) return;
    setText(formatJson(formData));
    setProblem(null);
  }, [formData]);
  const id = fieldPathId.$id;
  const problemId = `${id}__json-problem`;
  return (
    <>
      <TemplateEditor
        id={id}
        label={labelOf(props)}
        value={text}
        multiline
        placeholder='JSON, e.g. {"summary": "{{ outputs.ai1 }}"}'
        readOnly={disabled || readonly}
        invalid={!!problem || !!errorSchema?.__errors?.length}
        describedBy={problem ? problemId : undefined}
        onChange={(next) => {
          setText(next);
          if (next.trim() === "") {
            setProblem(null);
            onChange(undefined, fieldPathId.path);
            return;
          }
          try {
            const parsed: unknown = JSON.parse(next);
            setProblem(null);
            onChange(parsed, fieldPathId.path);
          } catch (error) {
            setProblem(`Not valid JSON yet: ${error instanceof Error ? error.message : String(error)}`);
          }
        }}
      />
      {problem ? (
        <p id={problemId} className="dw-field-errors">
          {problem}
        </p>
      ) : null}
    </>
  );
}

/** The custom fields by the names `uiSchemaFor` puts in `ui:field`. */
export const fields: RegistryFieldsType = {
  keyValue: KeyValueField,
  alternatives: AlternativesField,
  json: JsonField,
};
