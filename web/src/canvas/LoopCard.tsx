// A `loop` node on the canvas: a resizable group whose body nodes are drawn inside it
// (React Flow sub-flow). Edges connect the group to the outside graph; body nodes
// connect to each other inside it.
//
// In the editor (which lends resize callbacks) a selected loop shows resize handles;
// in the run view it shows its items' progress and a picker for the item whose body
// states the canvas shows.
import { Handle, type NodeProps, NodeResizer, Position } from "@xyflow/react";
import { memo, useId } from "react";
import { useCanvasActions } from "./canvasContext";
import { DEFAULT_HANDLE, type StepNode } from "./definition";

/** Smallest group: room for the title and one card. */
const MIN_SIZE = { width: 240, height: 140 };

function LoopCardView({ id, data, selected }: NodeProps<StepNode>) {
  const { spec, handles, overlay } = data;
  const actions = useCanvasActions();
  const pickerId = useId();
  const label = spec.name || spec.id;
  const status = overlay?.status;
  const issues = overlay?.issues ?? [];
  const progress = overlay?.loop;
  const editable = actions.onResizeStart !== undefined;
  const item = actions.itemOf?.(id) ?? null;
  const classes = ["step", "step-loop", status ? `step-${status}` : "", issues.length ? "step-invalid" : "", selected ? "step-selected" : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <div
      className={classes}
      data-node-id={id}
      data-status={status ?? undefined}
      aria-label={`${label} (loop)${status ? `, ${status}` : ""}${issues.length ? `, ${issues.length} problem${issues.length > 1 ? "s" : ""}` : ""}`}
    >
      {editable ? (
        <NodeResizer
          isVisible={Boolean(selected)}
          minWidth={MIN_SIZE.width}
          minHeight={MIN_SIZE.height}
          onResizeStart={actions.onResizeStart}
          onResizeEnd={actions.onResizeEnd}
        />
      ) : null}
      <Handle type="target" position={Position.Left} aria-label={`${label} input`} />
      <div className="step-head step-loop-head">
        <span className="step-name">{label}</span>
        <span className="step-type">loop · for each item</span>
      </div>
      {status || progress ? (
        <div className="step-badges">
          {status ? <span className={`status status-${status}`}>{status}</span> : null}
          {progress ? (
            <span className="badge" aria-label={`${label} items`} title="items completed / failed / total">
              {progress.completed}/{progress.total} done
              {progress.failed ? `, ${progress.failed} failed` : ""}
              {progress.running ? `, ${progress.running} running` : ""}
            </span>
          ) : null}
        </div>
      ) : null}
      {progress && progress.total > 0 && actions.pickItem ? (
        // nodrag/nopan: using the picker must not drag or pan the canvas.
        <div className="step-loop-item nodrag nopan">
          <label htmlFor={pickerId}>Item</label>
          <select
            id={pickerId}
            value={item === null ? "" : String(item)}
            onChange={(event) => actions.pickItem?.(id, event.target.value === "" ? null : Number(event.target.value))}
          >
            <option value="">none</option>
            {Array.from({ length: progress.total }, (_, index) => (
              <option key={index} value={index}>
                {index}
              </option>
            ))}
          </select>
        </div>
      ) : null}
      {issues.length ? (
        <ul className="step-issues" aria-label={`Problems of ${label}`}>
          {issues.map((message) => (
            <li key={message}>{message}</li>
          ))}
        </ul>
      ) : null}
      {handles.map((handle, index) => (
        <Handle
          key={handle}
          id={handle}
          type="source"
          position={Position.Right}
          className={`handle-${handle}`}
          style={{ top: `${((index + 1) / (handles.length + 1)) * 100}%` }}
          aria-label={handle === DEFAULT_HANDLE ? `${label} output` : `${label} ${handle} output`}
        >
          {handle !== DEFAULT_HANDLE ? <span className="handle-label">{handle}</span> : null}
        </Handle>
      ))}
    </div>
  );
}

export const LoopCard = memo(LoopCardView);
