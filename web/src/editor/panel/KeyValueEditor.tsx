// Rows of key + value for a JSON object (headers, query parameters, mappings).
import { useEffect, useRef, useState } from "react";
import { jsonEqual } from "./config";
import type { EditorMode } from "./schema";
import { TemplateEditor } from "./TemplateEditor";

interface Row {
  id: number;
  key: string;
  text: string;
}

type Json = Record<string, unknown>;

/** A value as the text its row shows: strings as they are, anything else as JSON. */
function toText(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A row's text as a value: JSON numbers, booleans, lists and objects are kept as such. */
function fromText(text: string, anyJson: boolean): unknown {
  if (!anyJson) return text;
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "string" ? text : parsed;
  } catch {
    return text;
  }
}

export interface KeyValueEditorProps {
  value: Json | undefined;
  onChange: (value: Json) => void;
  /** The field's label: rows are named after it ("Headers: name 1"). */
  label: string;
  labelledBy?: string;
  /** Values may be any JSON (typed as text) rather than strings only. */
  anyJson?: boolean;
  mode?: EditorMode;
  disabled?: boolean;
  /** Messages per key (`config.headers.X-Id` -> `{"X-Id": [...]}`). */
  errors?: Record<string, string[]>;
}

/**
 * The rows are local state (an object cannot hold a half-typed or repeated key); they
 * are rebuilt from `value` only when it changes to something the rows do not describe.
 */
export function KeyValueEditor({ value, onChange, label, labelledBy, anyJson = false, mode = "template", disabled, errors = {} }: KeyValueEditorProps) {
  const nextId = useRef(0);
  const toRows = (object: Json | undefined): Row[] =>
    Object.entries(object ?? {}).map(([key, item]) => ({ id: nextId.current++, key, text: toText(item) }));
  const [rows, setRows] = useState<Row[]>(() => toRows(value));
  const toObject = (list: Row[]): Json =>
    Object.fromEntries(list.filter((row) => row.key !== "").map((row) => [row.key, fromText(row.text, anyJson)]));

  useEffect(() => {
    setRows((current) => (jsonEqual(toObject(current), value ?? {}) ? current : toRows(value)));
    // toRows/toObject only read refs and props that `value` changes with.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [value]);

  const update = (next: Row[]) => {
    setRows(next);
    onChange(toObject(next));
  };
  const edit = (id: number, patch: Partial<Row>) => update(rows.map((row) => (row.id === id ? { ...row, ...patch } : row)));

  return (
    <div role="group" aria-labelledby={labelledBy} aria-label={labelledBy ? undefined : label} className="dw-kv">
      {rows.length === 0 ? <p className="dw-field-help">None yet.</p> : null}
      {rows.map((row, index) => {
        const rowErrors = row.key ? errors[row.key] : undefined;
        const errorId = `${labelledBy ?? "kv"}-row-${row.id}-errors`;
        return (
          <div key={row.id} className="dw-kv-row">
            <input
              className="dw-input dw-kv-key"
              aria-label={`${label}: name ${index + 1}`}
              placeholder="name"
              value={row.key}
              disabled={disabled}
              aria-invalid={rowErrors ? true : undefined}
              aria-describedby={rowErrors ? errorId : undefined}
              onChange={(event) => edit(row.id, { key: event.target.value })}
            />
            <TemplateEditor
              label={`${label}: value ${index + 1}`}
              value={row.text}
              mode={mode}
              placeholder="value"
              readOnly={disabled}
              invalid={!!rowErrors}
              describedBy={rowErrors ? errorId : undefined}
              onChange={(text) => edit(row.id, { text })}
            />
            <button
              type="button"
              className="dw-button-small dw-button-danger"
              aria-label={`Remove ${label} entry ${index + 1}`}
              disabled={disabled}
              onClick={() => update(rows.filter((other) => other.id !== row.id))}
            >
              Remove
            </button>
            {rowErrors ? (
              <ul id={errorId} className="dw-field-errors dw-kv-errors">
                {rowErrors.map((message, i) => (
                  <li key={i}>
                    {row.key}: {message}
                  </li>
                ))}
              </ul>
            ) : null}
          </div>
        );
      })}
      <button
        type="button"
        className="dw-button-small"
        aria-label={`Add ${label} entry`}
        disabled={disabled}
        onClick={() => update([...rows, { id: nextId.current++, key: "", text: "" }])}
      >
        Add entry
      </button>
    </div>
  );
}

/** Rows of template strings (a list of recipients, say). */
export function ListEditor({
  value,
  onChange,
  label,
  labelledBy,
  mode = "template",
  disabled,
  errors = {},
}: {
  value: string[];
  onChange: (value: string[]) => void;
  label: string;
  labelledBy?: string;
  mode?: EditorMode;
  disabled?: boolean;
  errors?: Record<string, string[]>;
}) {
  return (
    <div role="group" aria-labelledby={labelledBy} aria-label={labelledBy ? undefined : label} className="dw-kv">
      {value.map((item, index) => (
        <div key={index} className="dw-kv-row dw-list-row">
          <TemplateEditor
            label={`${label}: item ${index + 1}`}
            value={item}
            mode={mode}
            readOnly={disabled}
            invalid={!!errors[String(index)]}
            onChange={(text) => onChange(value.map((old, i) => (i === index ? text : old)))}
          />
          <button
            type="button"
            className="dw-button-small dw-button-danger"
            aria-label={`Remove ${label} item ${index + 1}`}
            disabled={disabled}
            onClick={() => onChange(value.filter((_, i) => i !== index))}
          >
            Remove
          </button>
          {errors[String(index)] ? (
            <ul className="dw-field-errors dw-kv-errors">
              {errors[String(index)]!.map((message, i) => (
                <li key={i}>{message}</li>
              ))}
            </ul>
          ) : null}
        </div>
      ))}
      <button type="button" className="dw-button-small" aria-label={`Add ${label} item`} disabled={disabled} onClick={() => onChange([...value, ""])}>
        Add item
      </button>
    </div>
  );
}
