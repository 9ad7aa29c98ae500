// The `union` rjsf field: a discriminated union (a webhook's `auth`) as a select of its
// variants, then the chosen variant's own fields.
import type { FieldProps } from "@rjsf/utils";
import { labelId } from "../editor/panel/formTemplates";
import { Prose } from "../editor/panel/Prose";
import type { UnionUiOptions } from "./schema";

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function UnionField(props: FieldProps) {
  const { formData, onChange, fieldPathId, registry, disabled, readonly, uiSchema, schema, name } = props;
  const { discriminator = "type", options = [] } = (uiSchema?.["ui:options"] ?? {}) as Partial<UnionUiOptions>;
  const value = isObject(formData) ? formData : {};
  const chosen = typeof value[discriminator] === "string" ? (value[discriminator] as string) : "";
  const option = options.find((candidate) => candidate.value === chosen);
  const label = String(schema.title ?? name);
  const { ObjectField } = registry.fields;
  const descriptionId = `${fieldPathId.$id}__variant`;
  return (
    <div role="group" aria-labelledby={labelId(fieldPathId.$id)} className="dw-union">
      <select
        // The chosen variant's fieldset takes the field's own id.
        id={`${fieldPathId.$id}__kind`}
        className="dw-input"
        aria-label={`${label}: kind`}
        aria-describedby={option?.description ? descriptionId : undefined}
        value={chosen}
        disabled={disabled || readonly}
        // Another variant starts empty: a token's header is not an HMAC's.
        onChange={(event) => onChange({ [discriminator]: event.target.value }, fieldPathId.path)}
      >
        {option ? null : <option value="">{chosen ? `${chosen} (unknown)` : "Choose…"}</option>}
        {options.map((candidate) => (
          <option key={candidate.value} value={candidate.value}>
            {candidate.label}
          </option>
        ))}
      </select>
      {option?.description ? (
        <p id={descriptionId} className="dw-field-help">
          <Prose text={option.description} />
        </p>
      ) : null}
      {ObjectField && option && Object.keys(option.schema.properties ?? {}).length > 0 ? (
        <ObjectField {...props} schema={option.schema} uiSchema={option.uiSchema} formData={value} />
      ) : null}
    </div>
  );
}
