// rjsf templates for the panel: labels with required marks, descriptions, errors, buttons.
import {
  ariaDescribedByIds,
  type DescriptionFieldProps,
  type FieldErrorProps,
  type FieldTemplateProps,
  type IconButtonProps,
  type TemplatesType,
  type TitleFieldProps,
  type WidgetProps,
  descriptionId,
  errorId,
} from "@rjsf/utils";
import { Prose } from "./Prose";

/** The id of a field's visible label, for editors that cannot use `<label for>`. */
export function labelId(id: string): string {
  return `${id}__label`;
}

/** A visible "*" with a spoken "required". */
export function RequiredMark() {
  return (
    <abbr className="dw-required" title="required" aria-label="required">
      *
    </abbr>
  );
}

function FieldTemplate(props: FieldTemplateProps) {
  const { id, label, children, errors, rawDescription, hidden, required, displayLabel, uiSchema, schema } = props;
  if (hidden) return <div hidden>{children}</div>;
  // Custom fields (key-value rows, unions, JSON) label their own group; checkboxes and
  // lists draw their own label; list items get a label only screen readers read.
  const custom = typeof uiSchema?.["ui:field"] === "string";
  const container = (schema.type === "object" || schema.type === "array") && !custom;
  const checkbox = schema.type === "boolean";
  const description =
    rawDescription && (displayLabel || custom || checkbox) ? (
      <p id={descriptionId(id)} className="dw-field-help">
        <Prose text={rawDescription} />
      </p>
    ) : null;
  let labelElement = null;
  if (displayLabel && label) {
    labelElement = (
      <label id={labelId(id)} htmlFor={id} className="dw-label">
        {label}
        {required ? <RequiredMark /> : null}
      </label>
    );
  } else if (custom && label) {
    labelElement = (
      <span id={labelId(id)} className="dw-label">
        {label}
        {required ? <RequiredMark /> : null}
      </span>
    );
  } else if (!container && !checkbox && label) {
    labelElement = (
      <label htmlFor={id} className="visually-hidden">
        {label}
      </label>
    );
  }
  return (
    <div className={`dw-field${container ? " dw-field-container" : ""}`}>
      {labelElement}
      {checkbox ? null : description}
      {children}
      {checkbox ? description : null}
      {errors}
    </div>
  );
}

function TitleFieldTemplate({ id, title, required }: TitleFieldProps) {
  return (
    <legend id={id} className="dw-label">
      {title}
      {required ? <RequiredMark /> : null}
    </legend>
  );
}

function DescriptionFieldTemplate({ id, description }: DescriptionFieldProps) {
  if (!description) return null;
  return (
    <p id={id} className="dw-field-help">
      {typeof description === "string" ? <Prose text={description} /> : description}
    </p>
  );
}

/** A checkbox with its label beside it (rjsf's default needs Bootstrap's CSS). */
export function CheckboxWidget({ id, value, onChange, onBlur, onFocus, label, disabled, readonly, rawErrors }: WidgetProps) {
  return (
    <label className="dw-checkbox">
      <input
        type="checkbox"
        id={id}
        checked={value === true}
        disabled={disabled || readonly}
        aria-invalid={rawErrors?.length ? true : undefined}
        aria-describedby={ariaDescribedByIds(id)}
        onChange={(event) => onChange(event.target.checked)}
        onBlur={() => onBlur(id, value)}
        onFocus={() => onFocus(id, value)}
      />
      <span>{label}</span>
    </label>
  );
}

function FieldErrorTemplate({ errors = [], fieldPathId }: FieldErrorProps) {
  const messages = errors.filter((error) => !!error);
  if (messages.length === 0) return null;
  return (
    <ul id={errorId(fieldPathId)} className="dw-field-errors">
      {messages.map((error, index) => (
        <li key={index}>{error}</li>
      ))}
    </ul>
  );
}

function textButton(text: string, className = "") {
  return function TextButton({ icon: _icon, iconType: _type, uiSchema: _ui, registry: _registry, className: _cls, ...rest }: IconButtonProps) {
    return (
      <button type="button" className={`dw-button-small ${className}`} {...rest}>
        {text}
      </button>
    );
  };
}

/** The panel's rjsf templates (no Bootstrap icons: buttons say what they do). */
export const templates: Partial<TemplatesType> = {
  FieldTemplate,
  FieldErrorTemplate,
  TitleFieldTemplate,
  DescriptionFieldTemplate,
  ButtonTemplates: {
    AddButton: textButton("Add item"),
    RemoveButton: textButton("Remove", "dw-button-danger"),
    MoveUpButton: textButton("Move up"),
    MoveDownButton: textButton("Move down"),
    CopyButton: textButton("Copy"),
    ClearButton: textButton("Clear"),
    SubmitButton: () => null,
  },
};
