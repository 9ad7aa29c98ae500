// The editor's toolbar: the workflow's name, its saved state, and the commands.
import { useReactFlow } from "@xyflow/react";
import { useId } from "react";
import { useEditor, useEditorStore, useHistory } from "./context";

export interface ToolbarProps {
  saving: boolean;
  onSave: () => void;
  onRun: () => void;
  onGenerate: () => void;
  onHistory: () => void;
}

export function Toolbar({ saving, onSave, onRun, onGenerate, onHistory }: ToolbarProps) {
  const store = useEditorStore();
  const nameId = useId();
  const { name, dirty, version, workflowId, triggerCount, paused } = useEditor((s) => ({
    name: s.base.name,
    dirty: s.dirty,
    version: s.version,
    workflowId: s.workflowId,
    triggerCount: Array.isArray(s.base.triggers) ? s.base.triggers.length : 0,
    paused: s.base.status === "paused",
  }));
  const { canUndo, canRedo } = useHistory();
  const { fitView } = useReactFlow();
  const mod = typeof navigator !== "undefined" && /Mac|iPhone|iPad/.test(navigator.platform) ? "⌘" : "Ctrl+";

  return (
    <div className="editor-toolbar" role="toolbar" aria-label="Workflow">
      <div className="editor-name">
        <label htmlFor={nameId}>Workflow name</label>
        <input id={nameId} value={name} onChange={(event) => store.getState().setName(event.target.value)} />
      </div>
      <span className="editor-state" aria-live="polite">
        {workflowId === undefined ? "Not saved yet" : `Version ${version ?? "?"}`}
        {dirty ? <span className="badge badge-unsaved"> unsaved changes</span> : null}
        {paused ? <span className="badge badge-paused"> paused</span> : null}
      </span>
      <div className="editor-actions">
        <button type="button" className="button-secondary" onClick={() => store.getState().undo()} disabled={!canUndo} title={`Undo (${mod}Z)`}>
          Undo
        </button>
        <button type="button" className="button-secondary" onClick={() => store.getState().redo()} disabled={!canRedo} title={`Redo (${mod}Shift+Z)`}>
          Redo
        </button>
        <button type="button" className="button-secondary" onClick={() => void fitView({ padding: 0.2, duration: 200 })}>
          Fit view
        </button>
        <button
          type="button"
          className="button-secondary"
          onClick={() => store.getState().showSettings()}
          title="Schedules, webhooks, pause, the error workflow, limits and retention"
        >
          Triggers{triggerCount > 0 ? ` (${triggerCount})` : ""}
        </button>
        <button type="button" className="button-secondary" onClick={onHistory} title="Stored versions: compare and restore">
          History
        </button>
        <button type="button" className="button-secondary" onClick={onGenerate}>
          Generate
        </button>
        <button type="button" className="button-secondary" onClick={onRun}>
          Run
        </button>
        <button type="button" onClick={onSave} disabled={saving}>
          Save
        </button>
      </div>
    </div>
  );
}
