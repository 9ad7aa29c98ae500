// CodeMirror extensions of the template editor: `{{ }}` marks, completion, one-line mode.
import { type Completion, type CompletionContext, type CompletionResult } from "@codemirror/autocomplete";
import { EditorState, type Extension } from "@codemirror/state";
import { Decoration, type DecorationSet, EditorView, MatchDecorator, ViewPlugin, type ViewUpdate } from "@codemirror/view";
import type { EditorMode } from "./schema";
import { insideTemplate } from "./templateText";

const templateMark = Decoration.mark({ class: "dw-cm-template" });
const templateMatcher = new MatchDecorator({
  // Lines only (MatchDecorator never matches across lines): most templates are short.
  regexp: /\{\{.*?\}\}|\{%.*?%\}/g,
  decoration: () => templateMark,
});

/** Marks each `{{ … }}` / `{% … %}` span (class `dw-cm-template`). */
export const templateHighlight: Extension = ViewPlugin.fromClass(
  class {
    decorations: DecorationSet;
    constructor(view: EditorView) {
      this.decorations = templateMatcher.createDeco(view);
    }
    update(update: ViewUpdate) {
      this.decorations = templateMatcher.updateDeco(update, this.decorations);
    }
  },
  { decorations: (plugin) => plugin.decorations },
);

/**
 * Completion of `options()` (read on each request, so it follows the workflow) inside
 * `{{ … }}`, or anywhere in expression mode.
 */
export function nameCompletion(options: () => readonly Completion[], mode: EditorMode) {
  return (context: CompletionContext): CompletionResult | null => {
    const line = context.state.doc.lineAt(context.pos);
    const before = context.state.doc.sliceString(0, context.pos);
    if (mode === "template" && !insideTemplate(before)) return null;
    const word = context.matchBefore(/[\w.]*/);
    const from = word?.from ?? context.pos;
    const typed = word !== null && word.from !== word.to;
    // Right after `{{` or `{{ ` the list opens on its own; elsewhere a name must be begun.
    const justOpened = /\{[{%]\s*$/.test(line.text.slice(0, context.pos - line.from));
    if (!typed && !context.explicit && !justOpened) return null;
    return { from, options: [...options()], validFor: /^[\w.]*$/ };
  };
}

/** Keeps the document one line: pasted or typed line breaks become spaces. */
export const singleLine: Extension = EditorState.transactionFilter.of((tr) => {
  if (!tr.docChanged || tr.newDoc.lines === 1) return tr;
  const text = tr.newDoc.toString();
  return [tr, { changes: { from: 0, to: text.length, insert: text.replace(/\r?\n/g, " ") }, sequential: true }];
});

/** Colours from the app's CSS variables, so both themes work. */
export const editorTheme: Extension = EditorView.theme({
  "&": {
    backgroundColor: "var(--surface)",
    color: "var(--text)",
    border: "1px solid var(--border)",
    borderRadius: "4px",
    fontSize: "0.9rem",
  },
  "&.cm-focused": { outline: "2px solid var(--focus)", outlineOffset: "1px" },
  ".cm-content": { caretColor: "var(--text)", fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace", padding: "4px 0" },
  ".cm-line": { padding: "0 6px" },
  ".cm-placeholder": { color: "var(--muted)" },
  ".cm-cursor": { borderLeftColor: "var(--text)" },
  "&.cm-focused .cm-selectionBackground, .cm-selectionBackground": { backgroundColor: "color-mix(in srgb, var(--accent) 25%, transparent)" },
  ".dw-cm-template": {
    color: "var(--accent)",
    backgroundColor: "color-mix(in srgb, var(--accent) 12%, transparent)",
    borderRadius: "3px",
  },
  ".cm-tooltip": { backgroundColor: "var(--surface)", color: "var(--text)", border: "1px solid var(--border)" },
  ".cm-tooltip-autocomplete ul li[aria-selected]": { backgroundColor: "var(--accent)", color: "var(--accent-text)" },
  ".cm-completionDetail": { color: "var(--muted)", marginLeft: "0.5em" },
  ".cm-tooltip-autocomplete ul li[aria-selected] .cm-completionDetail": { color: "inherit" },
  "&[aria-disabled=true], &.dw-cm-readonly": { opacity: "0.7" },
});
