import { type KeyboardEvent, type ReactNode, type RefObject, useEffect, useId, useRef } from "react";
import { createPortal } from "react-dom";

interface ConfirmDialogProps {
  title: string;
  children: ReactNode;
  /** The confirming button's text (e.g. "Delete"). */
  confirmLabel: string;
  busy?: boolean;
  /** Shown under the message when the action failed (the dialog stays open). */
  error?: ReactNode;
  onConfirm: () => void;
  onCancel: () => void;
  /**
   * Read when the dialog closes: an element here gets the focus instead of the one that had
   * it before (which a successful action may have removed, e.g. a deleted row's button).
   * Pass a stable ref (useRef): a new object would reopen the dialog's focus handling.
   */
  focusOnClose?: RefObject<HTMLElement | null>;
}

/**
 * A modal confirmation (role alertdialog): focus starts on Cancel, Tab stays inside,
 * Escape cancels, and focus returns to whatever had it before (or to `focusOnClose`).
 * Rendered into <body>, with the rest of the page inert and hidden from assistive
 * technology while it is open.
 */
export function ConfirmDialog({
  title,
  children,
  confirmLabel,
  busy,
  error,
  onConfirm,
  onCancel,
  focusOnClose,
}: ConfirmDialogProps) {
  const titleId = useId();
  const bodyId = useId();
  const dialog = useRef<HTMLDivElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    const previous = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    const backdrop = dialog.current?.parentElement;
    const hidden = Array.from(document.body.children).filter(
      (element): element is HTMLElement =>
        element instanceof HTMLElement && element !== backdrop && !element.inert && !element.hasAttribute("aria-hidden"),
    );
    for (const element of hidden) {
      element.inert = true;
      element.setAttribute("aria-hidden", "true");
    }
    cancel.current?.focus();
    return () => {
      for (const element of hidden) {
        element.inert = false;
        element.removeAttribute("aria-hidden");
      }
      // After the page is no longer inert: an inert element cannot take the focus.
      (focusOnClose?.current ?? previous)?.focus();
    };
  }, [focusOnClose]);

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    if (event.key === "Escape" && !busy) {
      event.stopPropagation();
      onCancel();
    } else if (event.key === "Tab") {
      const focusable = Array.from(dialog.current?.querySelectorAll<HTMLElement>("button:not(:disabled)") ?? []);
      const first = focusable[0];
      const last = focusable[focusable.length - 1];
      if (!first || !last) return;
      if (event.shiftKey && document.activeElement === first) {
        event.preventDefault();
        last.focus();
      } else if (!event.shiftKey && document.activeElement === last) {
        event.preventDefault();
        first.focus();
      }
    }
  }

  return createPortal(
    <div className="dialog-backdrop">
      <div
        ref={dialog}
        className="dialog"
        role="alertdialog"
        aria-modal="true"
        aria-labelledby={titleId}
        aria-describedby={bodyId}
        onKeyDown={onKeyDown}
      >
        <h2 id={titleId}>{title}</h2>
        <div id={bodyId}>{children}</div>
        {error ? (
          <div role="alert" className="error">
            {error}
          </div>
        ) : null}
        <div className="dialog-actions">
          <button ref={cancel} type="button" className="secondary" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
          <button type="button" className="danger" onClick={onConfirm} disabled={busy}>
            {confirmLabel}
          </button>
        </div>
      </div>
    </div>,
    document.body,
  );
}
