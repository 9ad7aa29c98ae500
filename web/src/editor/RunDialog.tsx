// The Run dialog: inputs as a JSON object, then a background run (saving first if needed).
import { type FormEvent, useId, useState } from "react";
import { useNavigate } from "react-router";
import { errorMessage } from "../api/client";
import { Dialog } from "./Dialog";
import { useEditorStore } from "./context";
import { useExecuteWorkflow } from "./queries";
import { inputsTemplate, parseInputs } from "./runInputs";

export interface RunDialogProps {
  open: boolean;
  onClose: () => void;
  /** Saves unsaved changes; answers the stored workflow's id, or null when the save was refused. */
  save: () => Promise<string | null>;
}

export function RunDialog({ open, onClose, save }: RunDialogProps) {
  return (
    <Dialog open={open} title="Run workflow" onClose={onClose}>
      <RunForm onClose={onClose} save={save} />
    </Dialog>
  );
}

function RunForm({ onClose, save }: Omit<RunDialogProps, "open">) {
  const store = useEditorStore();
  const navigate = useNavigate();
  const execute = useExecuteWorkflow();
  const inputId = useId();
  const errorId = useId();
  const [text, setText] = useState(() => JSON.stringify(inputsTemplate(store.getState().base.variables), null, 2));
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const dirty = store.getState().dirty || store.getState().workflowId === undefined;

  async function submit(event: FormEvent) {
    event.preventDefault();
    const parsed = parseInputs(text);
    if ("error" in parsed) {
      setError(parsed.error);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const state = store.getState();
      const id = state.dirty || state.workflowId === undefined ? await save() : state.workflowId;
      if (id === null) {
        setError("The workflow was not saved: fix the problems listed, then run it.");
        return;
      }
      const started = await execute.mutateAsync({ id, inputs: parsed.inputs });
      navigate(`/runs/${encodeURIComponent(started.execution_id)}`);
    } catch (reason) {
      setError(errorMessage(reason, "the run did not start"));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form onSubmit={submit} noValidate>
      <label htmlFor={inputId}>Inputs (JSON)</label>
      <textarea
        id={inputId}
        className="editor-code"
        rows={8}
        value={text}
        spellCheck={false}
        aria-invalid={error !== null}
        aria-describedby={error ? errorId : undefined}
        onChange={(event) => setText(event.target.value)}
      />
      {dirty ? <p className="editor-hint">Unsaved changes are saved first (a new version).</p> : null}
      {error ? (
        <p id={errorId} className="error" role="alert">
          {error}
        </p>
      ) : null}
      {busy ? (
        <p role="status" className="editor-hint">
          Starting…
        </p>
      ) : null}
      <div className="dialog-actions">
        <button type="button" className="button-secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" disabled={busy}>
          Start run
        </button>
      </div>
    </form>
  );
}
