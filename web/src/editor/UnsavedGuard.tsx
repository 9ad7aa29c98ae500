// Unsaved changes are not lost by accident: leaving the page in the app asks first,
// closing or reloading the tab gets the browser's own warning.
import { useCallback, useEffect } from "react";
import { type BlockerFunction, useBlocker } from "react-router";
import { Dialog } from "./Dialog";
import { useEditor, useEditorStore } from "./context";

export function UnsavedGuard() {
  const store = useEditorStore();
  const dirty = useEditor((s) => s.dirty);
  // Read at navigation time: a save that just finished has already cleared the flag.
  const shouldBlock = useCallback<BlockerFunction>(
    ({ currentLocation, nextLocation }) => store.getState().dirty && currentLocation.pathname !== nextLocation.pathname,
    [store],
  );
  const blocker = useBlocker(shouldBlock);

  useEffect(() => {
    if (!dirty) return;
    const warn = (event: BeforeUnloadEvent) => {
      event.preventDefault();
      event.returnValue = "";
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, [dirty]);

  const stay = () => blocker.reset?.();
  return (
    <Dialog open={blocker.state === "blocked"} title="Discard changes?" onClose={stay}>
      <p>This workflow has changes that are not saved. Leaving the editor discards them.</p>
      <div className="dialog-actions">
        <button type="button" className="button-secondary" onClick={stay}>
          Stay
        </button>
        <button type="button" className="button-danger" onClick={() => blocker.proceed?.()}>
          Discard
        </button>
      </div>
    </Dialog>
  );
}
