// The node palette: one button per node type; drag one onto the canvas, or click to add
// it at the centre of the view.
import { memo } from "react";
import type { NodeTypeInfo } from "../canvas/definition";

/** The drag-and-drop payload type carrying a node type from the palette to the canvas. */
export const NODE_TYPE_MIME = "application/x-ductwork-node-type";

export interface PaletteProps {
  nodeTypes: readonly NodeTypeInfo[];
  onAdd: (type: string) => void;
}

function PaletteView({ nodeTypes, onAdd }: PaletteProps) {
  return (
    <section className="editor-palette" aria-label="Node palette">
      <h2>Nodes</h2>
      <p className="editor-hint">Drag onto the canvas, or click to add.</p>
      <ul>
        {nodeTypes.map((nodeType) => (
          <li key={nodeType.type}>
            <button
              type="button"
              className="palette-item"
              draggable
              title={nodeType.description}
              aria-label={`Add ${nodeType.type} node`}
              onClick={() => onAdd(nodeType.type)}
              onDragStart={(event) => {
                event.dataTransfer.setData(NODE_TYPE_MIME, nodeType.type);
                event.dataTransfer.effectAllowed = "copy";
              }}
            >
              <span className="palette-type">{nodeType.type}</span>
              {nodeType.branches.length ? <span className="palette-branches">{nodeType.branches.join(" / ")}</span> : null}
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}

export const Palette = memo(PaletteView);
