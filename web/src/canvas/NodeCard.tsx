// The one node component of the canvas: the editor and the run view both draw with it.
//
// Input handle on the left; output handles on the right, one per branch (labelled when
// there is more than one, e.g. `true`/`false`, plus `error` for `on_error: "branch"`).
// The overlay shows what the page knows beyond the spec: a run's status, duration,
// attempts and cached badge, or the validation problems pinned to the node.
import { Handle, type NodeProps, Position } from "@xyflow/react";
import { memo } from "react";
import { formatDuration } from "../time";
import { DEFAULT_HANDLE, ERROR_HANDLE, type StepNode } from "./definition";
import { LoopCard } from "./LoopCard";

function NodeCardView({ id, data, selected }: NodeProps<StepNode>) {
  const { spec, handles, overlay } = data;
  const status = overlay?.status;
  const issues = overlay?.issues ?? [];
  const label = spec.name || spec.id;
  const named = handles.some((handle) => handle !== DEFAULT_HANDLE && handle !== ERROR_HANDLE);
  const classes = ["step", status ? `step-${status}` : "", issues.length ? "step-invalid" : "", selected ? "step-selected" : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <div
      className={classes}
      data-node-id={id}
      data-status={status ?? undefined}
      aria-label={`${label} (${spec.type})${status ? `, ${status}` : ""}${issues.length ? `, ${issues.length} problem${issues.length > 1 ? "s" : ""}` : ""}`}
    >
      <Handle type="target" position={Position.Left} aria-label={`${label} input`} />
      <div className="step-head">
        <span className="step-name">{label}</span>
        <span className="step-type">{spec.type}</span>
      </div>
      {status || overlay?.cached || (overlay?.attempts ?? 0) > 1 || overlay?.durationMs != null ? (
        <div className="step-badges">
          {status ? <span className={`status status-${status}`}>{status}</span> : null}
          {overlay?.cached ? <span className="badge badge-cached">cached</span> : null}
          {(overlay?.attempts ?? 0) > 1 ? (
            <span className="badge" title="attempts">
              ×{overlay?.attempts}
            </span>
          ) : null}
          {overlay?.durationMs != null ? (
            <span className="badge badge-duration">{formatDuration(overlay.durationMs)}</span>
          ) : null}
        </div>
      ) : null}
      {overlay?.tokens ? <p className="step-tokens">{overlay.tokens.slice(-160)}</p> : null}
      {issues.length ? (
        <ul className="step-issues" aria-label={`Problems of ${label}`}>
          {issues.map((message) => (
            <li key={message}>{message}</li>
          ))}
        </ul>
      ) : null}
      {handles.map((handle, index) => (
        // Beside named branches, the plain handle is labelled: its edges follow any of them.
        <Handle
          key={handle}
          id={handle}
          type="source"
          position={Position.Right}
          className={`handle-${handle}`}
          style={{ top: `${((index + 1) / (handles.length + 1)) * 100}%` }}
          aria-label={handle === DEFAULT_HANDLE ? `${label} output` : `${label} ${handle} output`}
        >
          {handle !== DEFAULT_HANDLE ? (
            <span className="handle-label">{handle}</span>
          ) : named ? (
            <span className="handle-label">any</span>
          ) : null}
        </Handle>
      ))}
    </div>
  );
}

export const NodeCard = memo(NodeCardView);

/** The `nodeTypes` prop for <ReactFlow>: defined once so React Flow never remounts nodes. */
export const NODE_TYPES = { step: NodeCard, loop: LoopCard };
