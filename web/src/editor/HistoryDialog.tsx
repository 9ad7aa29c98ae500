// The History dialog: the workflow's stored versions, what changed between one of them
// and the current version, and restoring one (as a new version, after a confirmation).
import { useState } from "react";
import type { Workflow } from "../api/client";
import { formatTime } from "../time";
import { DiffView } from "../versions/DiffView";
import { useRestoreVersion, useVersionDiff, useVersions } from "../versions/queries";
import { Dialog } from "./Dialog";
import { useEditor } from "./context";
import "../versions/versions.css";

export interface HistoryDialogProps {
  open: boolean;
  onClose: () => void;
  /** A version was restored: the workflow as stored now (its new version). */
  onRestored: (workflow: Workflow, from: number) => void;
}

export function HistoryDialog({ open, onClose, onRestored }: HistoryDialogProps) {
  return (
    <Dialog open={open} title="Version history" onClose={onClose}>
      <History onClose={onClose} onRestored={onRestored} />
    </Dialog>
  );
}

function History({ onClose, onRestored }: Omit<HistoryDialogProps, "open">) {
  const { workflowId, current, dirty } = useEditor((s) => ({ workflowId: s.workflowId, current: s.version ?? null, dirty: s.dirty }));
  if (workflowId === undefined) {
    return (
      <>
        <p>This workflow has no stored versions yet: save it first.</p>
        <div className="dialog-actions">
          <button type="button" onClick={onClose}>
            Close
          </button>
        </div>
      </>
    );
  }
  return <VersionList workflowId={workflowId} current={current} dirty={dirty} onClose={onClose} onRestored={onRestored} />;
}

function VersionList({
  workflowId,
  current,
  dirty,
  onClose,
  onRestored,
}: {
  workflowId: string;
  current: number | null;
  dirty: boolean;
  onClose: () => void;
  onRestored: HistoryDialogProps["onRestored"];
}) {
  const versions = useVersions(workflowId);
  const [compared, setCompared] = useState<number | null>(null);
  const [restoring, setRestoring] = useState<number | null>(null);
  const diff = useVersionDiff(workflowId, compared, compared === null ? null : current);
  const restore = useRestoreVersion(workflowId);

  return (
    <div className="history">
      {versions.isPending ? <p role="status">Loading the versions…</p> : null}
      {versions.isError ? (
        <p className="error" role="alert">
          {versions.error.message}
        </p>
      ) : null}
      {versions.data ? (
        <table className="history-versions" aria-label="Versions">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Saved</th>
              <th scope="col">Name</th>
              <th scope="col">
                <span className="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {versions.data.map((v) => (
              <tr key={v.version} aria-current={v.version === current ? "true" : undefined}>
                <td>
                  v{v.version}
                  {v.version === current ? <span className="badge"> current</span> : null}
                </td>
                <td>{formatTime(v.created_at)}</td>
                <td>{typeof v.name === "string" ? v.name : ""}</td>
                <td className="history-actions">
                  {v.version === current ? null : (
                    <>
                      <button
                        type="button"
                        className="button-secondary"
                        aria-pressed={compared === v.version}
                        onClick={() => setCompared(v.version)}
                        aria-label={`Compare version ${v.version} with the current one`}
                      >
                        Compare
                      </button>
                      <button
                        type="button"
                        className="button-secondary"
                        onClick={() => {
                          restore.reset();
                          setRestoring(v.version);
                        }}
                        aria-label={`Restore version ${v.version}`}
                      >
                        Restore
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}

      {restoring !== null ? (
        <div className="history-confirm" role="alertdialog" aria-label={`Restore version ${restoring}?`}>
          <p>
            Restore version {restoring}? It is saved as a new version{current !== null ? ` after version ${current}` : ""}; no version is lost.
            {dirty ? " Your unsaved changes in the editor are discarded." : ""}
          </p>
          {restore.isError ? <p className="error">{restore.error.message}</p> : null}
          <div className="dialog-actions">
            <button type="button" className="button-secondary" onClick={() => setRestoring(null)} disabled={restore.isPending}>
              Cancel
            </button>
            <button
              type="button"
              disabled={restore.isPending}
              onClick={() => {
                const from = restoring;
                restore.mutate(from, {
                  onSuccess: (workflow) => {
                    setRestoring(null);
                    onRestored(workflow, from);
                  },
                });
              }}
            >
              Restore version {restoring}
            </button>
          </div>
        </div>
      ) : null}

      {compared !== null ? (
        <section className="history-diff" aria-label="Differences">
          <h3>
            Version {compared} → version {current ?? "?"} (current)
          </h3>
          {diff.isPending ? <p role="status">Comparing…</p> : null}
          {diff.isError ? <p className="error">{diff.error.message}</p> : null}
          {diff.data ? <DiffView diff={diff.data} /> : null}
        </section>
      ) : null}

      <div className="dialog-actions">
        <button type="button" className="button-secondary" onClick={onClose}>
          Close
        </button>
      </div>
    </div>
  );
}
