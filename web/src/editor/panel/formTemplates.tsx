// rjsf templates for the panel: labels with required marks, descriptions, errors, buttons.
import {
  type FieldErrorProps,
  type FieldTemplateProps,
  type IconButtonProps,
  type TemplatesType,
  descriptionId,
  errorId,
  getUiOptions,
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
  const options = getUiOptions(uiSchema);
  // Custom fields (key-value rows, unions, JSON) label their own group; booleans and
  // lists draw their own label too.
  const custom = typeof uiSchema?.["ui:field"] === "string";
  const container = schema.type === "object" && !custom;
  const ownLabel = custom && label;
  return (
    <div className={`dw-field${container ? " dw-field-object" : ""}`}>
      {displayLabel && label && !options.widget?.toString().includes("checkbox") ? (
        <label id={labelId(id)} htmlFor={id} className="dw-label">
          {label}
          {required ? <RequiredMark /> : null}
        </label>
      ) : ownLabel ? (
        <span id={labelId(id)} className="dw-label">
          {label}
          {required ? <RequiredMark /> : null}
        </span>
      ) : null}
      {(displayLabel || custom) && rawDescription ? (
        <p id={descriptionId(id)} className="dw-field-help">
          <Prose text={rawDescription} />
        </p>
      ) : null}
      {children}
      {errors}
    </div>
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
