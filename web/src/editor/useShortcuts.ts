// The editor's keyboard shortcuts: delete, copy/paste, undo/redo. Never while typing
// (fields keep their own undo and Backspace) or while a dialog is open.
import { useEffect } from "react";
import type { EditorStore } from "./store";

/** Whether a key event belongs to a text field, not to the canvas. */
export function isTyping(target: EventTarget | null): boolean {
  if (!(target instanceof Element)) return false;
  if (target instanceof HTMLElement && target.isContentEditable) return true;
  return target.closest("input, textarea, select, [contenteditable=''], [contenteditable='true'], .cm-editor") !== null;
}

/** Listens on the window for the editor's shortcuts while mounted. */
export function useShortcuts(store: EditorStore, onPasted?: () => void) {
  useEffect(() => {
    function onKeyDown(event: KeyboardEvent) {
      if (event.defaultPrevented || isTyping(event.target) || document.querySelector("dialog[open]")) return;
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      const state = store.getState();
      if (!mod && (event.key === "Delete" || event.key === "Backspace")) {
        if (state.selection.nodes.length || state.selection.edges.length) {
          event.preventDefault();
          state.deleteSelection();
        }
      } else if (mod && key === "c") {
        // Text selected on the page is copied as text, not as nodes.
        if (window.getSelection()?.toString()) return;
        if (state.copySelection()) event.preventDefault();
      } else if (mod && key === "v") {
        if (state.paste().length) {
          event.preventDefault();
          onPasted?.();
        }
      } else if (mod && ((key === "z" && event.shiftKey) || key === "y")) {
        event.preventDefault();
        state.redo();
      } else if (mod && key === "z") {
        event.preventDefault();
        state.undo();
      }
    }
    window.addEventListener("keydown", onKeyDown);
    return () => window.removeEventListener("keydown", onKeyDown);
  }, [store, onPasted]);
}
