// The Generate dialog: a prompt to `POST /ai/workflows/generate`; the draft replaces the
// canvas unsaved (after a confirmation when there are unsaved changes).
import { type FormEvent, useEffect, useId, useRef, useState } from "react";
import { errorMessage } from "../api/client";
import type { WorkflowDefinition } from "../canvas/definition";
import { Dialog } from "./Dialog";
import { useEditorStore } from "./context";
import type { ValidationIssue } from "./pins";
import { ProblemError, useGenerateWorkflow } from "./queries";

export interface GenerateDialogProps {
  open: boolean;
  onClose: () => void;
  /** Called once the draft is on the canvas. */
  onLoaded: () => void;
}

export function GenerateDialog({ open, onClose, onLoaded }: GenerateDialogProps) {
  return (
    <Dialog open={open} title="Generate a workflow" onClose={onClose}>
      <GenerateForm onClose={onClose} onLoaded={onLoaded} />
    </Dialog>
  );
}

interface Draft {
  definition: WorkflowDefinition;
  issues: ValidationIssue[];
}

function GenerateForm({ onClose, onLoaded }: Omit<GenerateDialogProps, "open">) {
  const store = useEditorStore();
  const generate = useGenerateWorkflow();
  const promptId = useId();
  const [prompt, setPrompt] = useState("");
  const [error, setError] = useState<{ message: string; problems: ValidationIssue[] } | null>(null);
  const [pending, setPending] = useState<Draft | null>(null);
  // The request under way: closing the dialog abandons it, so a late draft cannot
  // replace the canvas the user went back to.
  const request = useRef<AbortController | null>(null);
  useEffect(() => () => request.current?.abort(), []);

  function open(draft: Draft) {
    store.getState().loadDraft(draft.definition, draft.issues);
    onLoaded();
  }

  function offer(draft: Draft) {
    const state = store.getState();
    if (state.dirty) setPending(draft);
    else open(draft);
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (!prompt.trim()) {
      setError({ message: "Describe what the workflow should do.", problems: [] });
      return;
    }
    setError(null);
    request.current?.abort();
    const controller = new AbortController();
    request.current = controller;
    try {
      const definition = await generate.mutateAsync({ prompt, signal: controller.signal });
      if (controller.signal.aborted) return;
      offer({ definition, issues: [] });
    } catch (reason) {
      if (controller.signal.aborted) return;
      if (reason instanceof ProblemError && reason.draft) {
        offer({ definition: reason.draft, issues: reason.problems });
      } else if (reason instanceof ProblemError) {
        setError({ message: reason.message, problems: reason.problems });
      } else {
        setError({ message: errorMessage(reason, "no draft came back"), problems: [] });
      }
    }
  }

  if (pending) {
    return (
      <div>
        <p>The draft replaces what is on the canvas, and your unsaved changes are lost (Undo brings them back).</p>
        <div className="dialog-actions">
          <button type="button" className="button-secondary" onClick={() => setPending(null)}>
            Keep editing
          </button>
          <button type="button" className="button-danger" onClick={() => open(pending)}>
            Replace
          </button>
        </div>
      </div>
    );
  }

  return (
    <form onSubmit={submit} noValidate>
      <label htmlFor={promptId}>Describe the workflow</label>
      <textarea
        id={promptId}
        rows={5}
        value={prompt}
        placeholder="When a user signs up, have the AI write a short welcome and email it to them."
        onChange={(event) => setPrompt(event.target.value)}
      />
      {error ? (
        <div className="error" role="alert">
          <p>Could not generate a draft: {error.message}</p>
          {error.problems.length ? (
            <ul>
              {error.problems.map((problem, index) => (
                <li key={index}>
                  {[problem.node_id, problem.field].filter(Boolean).join(" · ") || "workflow"}: {problem.message}
                </li>
              ))}
            </ul>
          ) : null}
        </div>
      ) : null}
      {generate.isPending ? (
        <p role="status" className="editor-hint">
          Generating… the model may take a while.
        </p>
      ) : null}
      <div className="dialog-actions">
        <button type="button" className="button-secondary" onClick={onClose}>
          Cancel
        </button>
        <button type="submit" disabled={generate.isPending}>
          Generate draft
        </button>
      </div>
    </form>
  );
}
