// A CodeMirror 6 editor for one template or expression, as a controlled React input.
import { autocompletion, type Completion } from "@codemirror/autocomplete";
import { defaultKeymap, history, historyKeymap } from "@codemirror/commands";
import { Annotation, Compartment, EditorState } from "@codemirror/state";
import { EditorView, keymap, placeholder as placeholderExt } from "@codemirror/view";
import { createContext, useContext, useEffect, useRef } from "react";
import type { EditorMode } from "./schema";
import { editorTheme, nameCompletion, singleLine, templateHighlight } from "./templateExtensions";
import { minimalChange } from "./templateText";

/** The names templates may use, provided by the panel to every editor inside it. */
export const CompletionsContext = createContext<readonly Completion[]>([]);

/** Marks changes that came from the `value` prop, so they are not echoed to onChange. */
const external = Annotation.define<boolean>();

export interface TemplateEditorProps {
  value: string;
  onChange: (value: string) => void;
  /** The accessible name (the field's label). */
  label: string;
  id?: string;
  mode?: EditorMode;
  multiline?: boolean;
  placeholder?: string;
  readOnly?: boolean;
  required?: boolean;
  invalid?: boolean;
  describedBy?: string;
  onBlur?: () => void;
  onFocus?: () => void;
}

function contentAttributes(props: TemplateEditorProps): Record<string, string> {
  const attrs: Record<string, string> = {
    "aria-label": props.label,
    "aria-multiline": props.multiline ? "true" : "false",
  };
  if (props.id) attrs.id = props.id;
  if (props.required) attrs["aria-required"] = "true";
  if (props.invalid) attrs["aria-invalid"] = "true";
  if (props.describedBy) attrs["aria-describedby"] = props.describedBy;
  if (props.readOnly) attrs["aria-readonly"] = "true";
  return attrs;
}

/**
 * The editor view is created once per mount; a new `value` from outside is applied as
 * the smallest change (the cursor stays put), and label, read-only state and the
 * placeholder are swapped through compartments.
 */
export function TemplateEditor(props: TemplateEditorProps) {
  const { value, mode = "template", multiline = false } = props;
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView | null>(null);
  const completions = useContext(CompletionsContext);
  const latest = useRef({ props, completions });
  latest.current = { props, completions };
  const attrs = useRef(new Compartment());
  const editable = useRef(new Compartment());
  const hint = useRef(new Compartment());

  useEffect(() => {
    const current = latest.current.props;
    const editor = new EditorView({
      parent: host.current!,
      state: EditorState.create({
        doc: current.value,
        extensions: [
          history(),
          keymap.of([...historyKeymap, ...defaultKeymap]),
          mode === "template" ? templateHighlight : [],
          autocompletion({ override: [nameCompletion(() => latest.current.completions, mode)], icons: false }),
          multiline ? EditorView.lineWrapping : [singleLine, keymap.of([{ key: "Enter", run: () => true }])],
          editorTheme,
          attrs.current.of(EditorView.contentAttributes.of(contentAttributes(current))),
          editable.current.of([EditorState.readOnly.of(!!current.readOnly), EditorView.editable.of(!current.readOnly)]),
          hint.current.of(current.placeholder ? placeholderExt(current.placeholder) : []),
          EditorView.updateListener.of((update) => {
            if (update.docChanged && !update.transactions.some((tr) => tr.annotation(external))) {
              latest.current.props.onChange(update.state.doc.toString());
            }
            if (update.focusChanged) {
              if (update.view.hasFocus) latest.current.props.onFocus?.();
              else latest.current.props.onBlur?.();
            }
          }),
        ],
      }),
    });
    view.current = editor;
    return () => {
      editor.destroy();
      view.current = null;
    };
    // Mode and line count shape the whole editor: a change of either makes a new one.
  }, [mode, multiline]);

  useEffect(() => {
    const editor = view.current;
    if (!editor) return;
    const change = minimalChange(editor.state.doc.toString(), value);
    if (change) editor.dispatch({ changes: change, annotations: external.of(true) });
  }, [value]);

  const { label, id, required, invalid, describedBy, readOnly, placeholder } = props;
  useEffect(() => {
    view.current?.dispatch({
      effects: [
        attrs.current.reconfigure(
          EditorView.contentAttributes.of(
            contentAttributes({ label, id, required, invalid, describedBy, readOnly, multiline, value: "", onChange: () => {} }),
          ),
        ),
        editable.current.reconfigure([EditorState.readOnly.of(!!readOnly), EditorView.editable.of(!readOnly)]),
        hint.current.reconfigure(placeholder ? placeholderExt(placeholder) : []),
      ],
    });
  }, [label, id, required, invalid, describedBy, readOnly, placeholder, multiline]);

  return <div ref={host} className={`dw-template-editor${multiline ? " dw-template-multiline" : ""}`} data-mode={mode} />;
}
