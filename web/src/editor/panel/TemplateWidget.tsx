// The rjsf widget for string fields: the CodeMirror template/expression editor.
import { ariaDescribedByIds, type WidgetProps } from "@rjsf/utils";
import type { PanelUiOptions } from "./schema";
import { TemplateEditor } from "./TemplateEditor";

/** Empty text clears the field (`undefined`), so the node's default applies. */
export function TemplateWidget(props: WidgetProps) {
  const { id, value, onChange, onBlur, onFocus, label, required, disabled, readonly, rawErrors, placeholder } = props;
  const options = props.options as PanelUiOptions;
  return (
    <TemplateEditor
      id={id}
      value={typeof value === "string" ? value : value === undefined || value === null ? "" : String(value)}
      onChange={(text) => onChange(text === "" ? undefined : text)}
      onBlur={() => onBlur(id, value)}
      onFocus={() => onFocus(id, value)}
      label={label || id}
      mode={options.mode}
      multiline={options.multiline}
      placeholder={placeholder}
      readOnly={disabled || readonly}
      required={required}
      invalid={(rawErrors?.length ?? 0) > 0}
      describedBy={ariaDescribedByIds(id)}
    />
  );
}
