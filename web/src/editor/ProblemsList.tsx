// Every validation problem, by node; clicking one selects and shows its node.
import { useReactFlow } from "@xyflow/react";
import { settingsPlace } from "../triggers/issues";
import { useEditor, useEditorStore } from "./context";
import type { ValidationStatus } from "./useValidation";

export interface ProblemsListProps {
  status: ValidationStatus;
  /** Why the server could not check the workflow (not a problem of the workflow). */
  error: string | null;
}

export function ProblemsList({ status, error }: ProblemsListProps) {
  const store = useEditorStore();
  const { byNode, general } = useEditor((s) => s.pins);
  const { getNode, setCenter, getZoom } = useReactFlow();
  const pinned = Object.entries(byNode).flatMap(([nodeId, issues]) => issues.map((issue) => ({ nodeId, issue })));
  const total = pinned.length + general.length;

  function show(nodeId: string) {
    store.getState().selectNode(nodeId);
    const node = getNode(nodeId);
    if (node) {
      const width = node.measured?.width ?? 180;
      const height = node.measured?.height ?? 60;
      void setCenter(node.position.x + width / 2, node.position.y + height / 2, { zoom: Math.max(getZoom(), 0.8), duration: 300 });
    }
  }

  return (
    <section className="editor-problems" aria-label="Problems">
      <h2>
        Problems <span className="badge">{total}</span>
        {status === "checking" ? <span className="editor-hint"> checking…</span> : null}
      </h2>
      {error ? <p className="error" role="alert">Could not check the workflow: {error}</p> : null}
      {total === 0 ? (
        <p className="editor-hint">{status === "idle" || status === "checking" ? "Checking…" : "No problems."}</p>
      ) : (
        <ul>
          {general.map((issue, index) => {
            const place = settingsPlace(issue.field);
            if (place === null) {
              return (
                <li key={`general-${index}`} className="problem">
                  <span className="problem-where">{issue.field ?? "workflow"}</span> {issue.message}
                </li>
              );
            }
            // A trigger's or the error workflow's problem opens the workflow settings there.
            const where =
              place === "list"
                ? "triggers"
                : place === "error-workflow"
                  ? "error workflow"
                  : `trigger ${place.trigger + 1}${place.field ? ` · ${place.field}` : ""}`;
            return (
              <li key={`general-${index}`}>
                <button
                  type="button"
                  className="problem problem-node"
                  onClick={() => store.getState().showSettings(typeof place === "object" ? place.trigger : null)}
                >
                  <span className="problem-where">{where}</span> {issue.message}
                </button>
              </li>
            );
          })}
          {pinned.map(({ nodeId, issue }, index) => (
            <li key={`${nodeId}-${index}`}>
              <button type="button" className="problem problem-node" onClick={() => show(nodeId)}>
                <span className="problem-where">
                  {nodeId}
                  {issue.field ? ` · ${issue.field}` : ""}
                </span>{" "}
                {issue.message}
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
