// Validation on every change: debounced, the stale request aborted, the answer pinned.
import { useEffect, useRef, useState } from "react";
import { errorMessage } from "../api/client";
import { useValidateWorkflow } from "./queries";
import { type EditorStore, currentDefinition } from "./store";

/** Quiet time after the last change before the definition is sent. */
export const VALIDATE_DELAY_MS = 300;

export type ValidationStatus = "idle" | "checking" | "done" | "failed";

/**
 * Validates the editor's definition after each content change (and once at start);
 * answers whether a check is under way and why the last one could not run.
 */
export function useValidation(store: EditorStore): { status: ValidationStatus; error: string | null } {
  const { mutateAsync } = useValidateWorkflow();
  const validate = useRef(mutateAsync);
  validate.current = mutateAsync;
  const [status, setStatus] = useState<ValidationStatus>("idle");
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let controller: AbortController | null = null;

    const run = () => {
      const current = new AbortController();
      controller = current;
      setStatus("checking");
      validate
        .current({ definition: currentDefinition(store.getState()), signal: current.signal })
        .then((answer) => {
          if (current.signal.aborted) return;
          store.getState().setIssues(answer.issues);
          setError(null);
          setStatus("done");
        })
        .catch((reason: unknown) => {
          if (current.signal.aborted) return;
          setError(errorMessage(reason, "the server could not check the workflow"));
          setStatus("failed");
        });
    };
    const schedule = () => {
      clearTimeout(timer);
      controller?.abort();
      timer = setTimeout(run, VALIDATE_DELAY_MS);
    };

    schedule();
    const unsubscribe = store.subscribe((state, previous) => {
      if (state.contentKey !== previous.contentKey) schedule();
    });
    return () => {
      unsubscribe();
      clearTimeout(timer);
      controller?.abort();
    };
  }, [store]);

  return { status, error };
}
