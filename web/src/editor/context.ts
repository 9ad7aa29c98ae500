// The open editor's store, handed down by context so every part reads it with selectors.
import { createContext, useContext } from "react";
import { useStore } from "zustand";
import { useShallow } from "zustand/react/shallow";
import type { EditorState, EditorStore } from "./store";

export const EditorStoreContext = createContext<EditorStore | null>(null);

/** The open editor's store (throws outside an editor: a wiring mistake, not a user error). */
export function useEditorStore(): EditorStore {
  const store = useContext(EditorStoreContext);
  if (store === null) throw new Error("useEditorStore outside <EditorStoreContext>");
  return store;
}

/**
 * A slice of the editor state; the component re-renders only when the slice changes
 * (compared shallowly, so selectors may return fresh arrays or objects of stable parts).
 */
export function useEditor<T>(selector: (state: EditorState) => T): T {
  return useStore(useEditorStore(), useShallow(selector));
}

/** Whether undo and redo have anything to do. */
export function useHistory(): { canUndo: boolean; canRedo: boolean } {
  const store = useEditorStore();
  return useStore(
    store.temporal,
    useShallow((t) => ({ canUndo: t.pastStates.length > 0, canRedo: t.futureStates.length > 0 })),
  );
}
