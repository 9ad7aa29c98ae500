// The editor's side panel: a node's settings, generated from its type's JSON Schema.
//
// Controlled: every edit calls onChange with the whole new NodeSpec and the panel shows
// whatever `node` says (undo, another node selected). Server issues are the only
// validation shown: rjsf's own (ajv) validation stays off (no liveValidate, no submit),
// because the server knows more (templates, credentials, limits) and two sets of
// messages for one field, one of them stale, would only confuse.
import Form from "@rjsf/core";
import type { IChangeEvent } from "@rjsf/core";
import type { RJSFSchema, UiSchema } from "@rjsf/utils";
import { structuralValidator as validator } from "../../forms/structuralValidator";
import { useMemo, useRef } from "react";
import { completionsFor } from "./completions";
import { jsonEqual, nextConfig } from "./config";
import { fields } from "./customFields";
import { CheckboxWidget, templates } from "./formTemplates";
import { fieldErrors } from "./issues";
import { NodeErrorHandling, NodeIdentity } from "./NodeFields";
import { Prose } from "./Prose";
import { freeFields, uiSchemaFor } from "./schema";
import { CompletionsContext } from "./TemplateEditor";
import { TemplateWidget } from "./TemplateWidget";
import { CodeWidget } from "./CodeWidget";
import { WorkflowPickerWidget } from "./WorkflowPickerWidget";
import type { NodeConfigPanelProps } from "./types";
import "./panel.css";

const widgets = { template: TemplateWidget, CheckboxWidget, code: CodeWidget, workflowPicker: WorkflowPickerWidget };
const ID_PREFIX = "dw-node";
const DEFAULT_FORM_STATE = {
  arrayMinItems: { populate: "requiredOnly" },
  emptyObjectFields: "populateRequiredDefaults",
} as const;

type Json = Record<string, unknown>;

/** For a type the server does not know: the whole config as one JSON field. */
const UNKNOWN_TYPE_FORM: { schema: RJSFSchema; uiSchema: UiSchema } = {
  schema: { title: "Config (JSON)" },
  uiSchema: { "ui:field": "json", "ui:submitButtonOptions": { norender: true } },
};

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The settings panel of one node (region "Node settings"). */
export function NodeConfigPanel({ node, nodeType, definition, issues, onChange, onClose, readOnly = false }: NodeConfigPanelProps) {
  const form = useMemo(
    () => (nodeType ? uiSchemaFor(nodeType.config_schema as Json, nodeType) : UNKNOWN_TYPE_FORM),
    [nodeType],
  );
  const free = useMemo(() => freeFields(form.uiSchema), [form]);
  const errors = useMemo(() => fieldErrors(issues, nodeType ? form.schema : undefined), [issues, form, nodeType]);
  const completions = useMemo(() => completionsFor(definition, node.id), [definition, node.id]);
  // rjsf keeps the handler it was first given in places: read the newest node here.
  const latest = useRef({ node, onChange });
  latest.current = { node, onChange };

  const handleChange = (event: IChangeEvent) => {
    const current = latest.current.node;
    const data: unknown = event.formData;
    const config = nodeType
      ? nextConfig(current.config, isObject(data) ? data : {}, form.schema, free)
      : isObject(data)
        ? data
        : {};
    if (jsonEqual(config, current.config ?? {})) return;
    latest.current.onChange({ ...current, config });
  };

  const hasSettings = !nodeType || Object.keys(form.schema.properties ?? {}).length > 0;
  const rootDescription = nodeType && typeof nodeType.config_schema.description === "string" ? nodeType.config_schema.description : null;
  const headingId = `${ID_PREFIX}-panel-title`;

  return (
    <section aria-label="Node settings" className="dw-panel">
      <header className="dw-panel-header">
        <div>
          <h2 id={headingId} className="dw-panel-title">
            {node.name || node.id}
          </h2>
          <p className="dw-panel-type">{node.type}</p>
        </div>
        {onClose ? (
          <button type="button" className="dw-button-small" onClick={onClose}>
            Close
          </button>
        ) : null}
      </header>
      {nodeType ? (
        <p className="dw-panel-description">
          <Prose text={nodeType.description} />
        </p>
      ) : (
        <p className="dw-panel-description dw-panel-warning">
          Unknown node type <code>{node.type}</code>: this server has no such type, so its settings can only be edited as JSON.
        </p>
      )}
      {errors.other.length > 0 ? (
        <div className="dw-panel-issues">
          <p id={`${ID_PREFIX}-other-issues`} className="dw-label">
            Problems with this node
          </p>
          <ul aria-labelledby={`${ID_PREFIX}-other-issues`}>
            {errors.other.map((message, index) => (
              <li key={index}>{message}</li>
            ))}
          </ul>
        </div>
      ) : null}

      <NodeIdentity node={node} errors={errors.node} onChange={onChange} disabled={readOnly} idPrefix={ID_PREFIX} />

      <h3 className="dw-panel-section">Settings</h3>
      {rootDescription ? (
        <p className="dw-field-help dw-panel-schema-description">
          <Prose text={rootDescription} />
        </p>
      ) : null}
      {hasSettings ? (
        <CompletionsContext.Provider value={completions}>
          <Form
            // A new node or type starts a fresh form (rows, union choices, JSON drafts).
            key={`${node.id}\u0000${node.type}`}
            className="dw-config-form"
            idPrefix={`${ID_PREFIX}-config`}
            schema={form.schema}
            uiSchema={form.uiSchema}
            formData={node.config ?? {}}
            validator={validator}
            fields={fields}
            widgets={widgets}
            templates={templates}
            extraErrors={errors.config}
            showErrorList={false}
            noHtml5Validate
            // Optional objects and lists stay absent until the user fills them: rjsf would
            // otherwise seed an AI node's `response_format` and `messages` with a
            // half-built entry the server then refuses (`type`, `role` required).
            experimental_defaultFormStateBehavior={DEFAULT_FORM_STATE}
            disabled={readOnly}
            onChange={handleChange}
          />
        </CompletionsContext.Provider>
      ) : (
        <p className="dw-field-help">This node type has no settings.</p>
      )}

      <h3 className="dw-panel-section">Error handling</h3>
      <NodeErrorHandling node={node} errors={errors.node} onChange={onChange} disabled={readOnly} idPrefix={ID_PREFIX} />
    </section>
  );
}
