// The rjsf widget for a `code` node's source: a monospace textarea where Tab indents
// (four spaces) and Shift+Tab outdents. Escape first lets Tab move the focus on, so the
// field never traps keyboard users. A plain textarea on purpose: the code runs in a
// sandbox on the server, which reports its errors; no editor dependency is needed.
import { ariaDescribedByIds, type WidgetProps } from "@rjsf/utils";
import { type KeyboardEvent, useRef } from "react";

const INDENT = "    ";

/** The text after Tab (indent) or Shift+Tab (outdent) over `start..end`, and the new selection. */
export function indentText(
  text: string,
  start: number,
  end: number,
  outdent: boolean,
): { text: string; start: number; end: number } {
  const lineStart = text.lastIndexOf("\n", start - 1) + 1;
  if (!outdent && start === end) {
    return { text: text.slice(0, start) + INDENT + text.slice(end), start: start + INDENT.length, end: start + INDENT.length };
  }
  const block = text.slice(lineStart, end);
  const lines = block.split("\n");
  let firstShift = 0;
  const changed = lines.map((line, index) => {
    if (!outdent) {
      if (index === 0) firstShift = INDENT.length;
      return INDENT + line;
    }
    const remove = line.match(/^ {1,4}|^\t/)?.[0].length ?? 0;
    if (index === 0) firstShift = -remove;
    return line.slice(remove);
  });
  const replaced = changed.join("\n");
  return {
    text: text.slice(0, lineStart) + replaced + text.slice(end),
    start: Math.max(lineStart, start + firstShift),
    end: end + (replaced.length - block.length),
  };
}

export function CodeWidget(props: WidgetProps) {
  const { id, value, onChange, onBlur, onFocus, disabled, readonly, rawErrors, placeholder, required } = props;
  const escaped = useRef(false);
  const text = typeof value === "string" ? value : "";
  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Escape") {
      escaped.current = true;
      return;
    }
    if (event.key !== "Tab" || escaped.current || event.ctrlKey || event.metaKey || event.altKey) {
      escaped.current = false;
      return;
    }
    event.preventDefault();
    const area = event.currentTarget;
    const next = indentText(area.value, area.selectionStart, area.selectionEnd, event.shiftKey);
    onChange(next.text === "" ? undefined : next.text);
    // After React writes the new value: put the selection where the indent left it.
    requestAnimationFrame(() => area.setSelectionRange(next.start, next.end));
  };
  return (
    <textarea
      id={id}
      className="dw-input dw-code"
      value={text}
      spellCheck={false}
      rows={Math.min(24, Math.max(8, text.split("\n").length + 1))}
      placeholder={placeholder}
      disabled={disabled}
      readOnly={readonly}
      required={required}
      aria-invalid={(rawErrors?.length ?? 0) > 0 ? true : undefined}
      aria-describedby={ariaDescribedByIds(id)}
      onChange={(event) => onChange(event.target.value === "" ? undefined : event.target.value)}
      onKeyDown={onKeyDown}
      onBlur={() => onBlur(id, value)}
      onFocus={() => onFocus(id, value)}
    />
  );
}
