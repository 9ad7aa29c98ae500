// One trigger's settings, generated from its type's JSON Schema (`GET /trigger-types`).
//
// Controlled, like the node settings form (editor/panel/NodeConfigPanel.tsx): every edit
// calls onChange with the whole new trigger; server problems are the only validation
// shown (rjsf's own stays off). Loaded in its own chunk: rjsf is most of its weight.
import Form from "@rjsf/core";
import type { IChangeEvent } from "@rjsf/core";
import { structuralValidator as validator } from "../forms/structuralValidator";
import { useMemo, useRef } from "react";
import { jsonEqual, nextConfig } from "../editor/panel/config";
import { fields as panelFields } from "../editor/panel/customFields";
import { CheckboxWidget, templates } from "../editor/panel/formTemplates";
import "../editor/panel/panel.css";
import { UnionField } from "./fields";
import { type TriggerIssue, triggerErrorSchema } from "./issues";
import { type TriggerSpec, type TriggerTypeInfo, triggerForm } from "./schema";

const fields = { ...panelFields, union: UnionField };
const widgets = { CheckboxWidget };

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The browser's IANA zones (suggested for `timezone`), once. */
let zones: string[] | null = null;
function timeZones(): string[] {
  if (zones === null) {
    const intl = Intl as typeof Intl & { supportedValuesOf?: (key: string) => string[] };
    zones = typeof intl.supportedValuesOf === "function" ? intl.supportedValuesOf("timeZone") : [];
    if (!zones.includes("UTC")) zones.unshift("UTC");
  }
  return zones;
}

export interface TriggerFormProps {
  /** Where the form's ids start (one form per trigger on the page). */
  idPrefix: string;
  trigger: TriggerSpec;
  triggerType: TriggerTypeInfo;
  issues: readonly TriggerIssue[];
  /** Stored `secret` credentials, offered for a webhook's auth credential. */
  credentials?: readonly string[];
  onChange: (next: TriggerSpec) => void;
}

const NO_NAMES: readonly string[] = [];

export function TriggerForm({ idPrefix, trigger, triggerType, issues, credentials = NO_NAMES, onChange }: TriggerFormProps) {
  const form = useMemo(() => triggerForm(triggerType, { zones: timeZones(), credentials }), [triggerType, credentials]);
  const free = useMemo(() => new Set<string>(), []);
  const errors = useMemo(() => triggerErrorSchema(issues, form.schema, form.uiSchema), [issues, form]);
  // rjsf keeps the handler it was first given in places: read the newest trigger here.
  const latest = useRef({ trigger, onChange });
  latest.current = { trigger, onChange };
  const { type: _type, ...data } = trigger;

  const handleChange = (event: IChangeEvent) => {
    const current = latest.current.trigger;
    const { type, ...before } = current;
    const formData: unknown = event.formData;
    const after = nextConfig(before, isObject(formData) ? formData : {}, form.schema, free);
    if (jsonEqual(after, before)) return;
    latest.current.onChange({ type, ...after });
  };

  return (
    <div className="trigger-form">
      {errors.other.length > 0 ? (
        <ul className="dw-field-errors" aria-label="Problems with this trigger">
          {errors.other.map((message, index) => (
            <li key={index}>{message}</li>
          ))}
        </ul>
      ) : null}
      <Form
        className="dw-config-form"
        idPrefix={idPrefix}
        schema={form.schema}
        uiSchema={form.uiSchema}
        formData={data}
        validator={validator}
        fields={fields}
        widgets={widgets}
        templates={templates}
        extraErrors={errors.errors}
        showErrorList={false}
        noHtml5Validate
        onChange={handleChange}
      />
    </div>
  );
}
