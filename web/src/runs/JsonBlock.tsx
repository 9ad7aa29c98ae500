// A collapsible JSON viewer (react-json-view-lite) coloured with the theme's variables.
import { JsonView, collapseAllNested, defaultStyles } from "react-json-view-lite";
import "react-json-view-lite/dist/index.css";

// The library's own structure classes (icons, indentation), our colours (runs.css).
const STYLES = {
  ...defaultStyles,
  container: "json-view",
  label: "json-key",
  clickableLabel: "json-key json-clickable",
  nullValue: "json-null",
  undefinedValue: "json-null",
  numberValue: "json-number",
  stringValue: "json-string",
  booleanValue: "json-boolean",
  otherValue: "json-other",
  punctuation: "json-punctuation",
};

/** `value` as collapsible JSON (objects, arrays) or a plain line (text, numbers, null). */
export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  if (value !== null && typeof value === "object") {
    return (
      <div className="json-block">
        <JsonView data={value} style={STYLES} shouldExpandNode={collapseAllNested} aria-label={label} />
      </div>
    );
  }
  return (
    <pre className="json-block json-scalar" aria-label={label}>
      {typeof value === "string" ? value : JSON.stringify(value ?? null)}
    </pre>
  );
}
