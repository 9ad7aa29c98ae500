// The editing canvas: React Flow over the store's nodes and edges.
//
// Only this component re-renders when nodes or edges change; every handler is a stable
// store action, and node objects keep their identity unless they changed (transforms.ts),
// so React Flow redraws only the cards that moved or changed.
import {
  Background,
  type Connection,
  Controls,
  type Edge,
  MiniMap,
  ReactFlow,
  type XYPosition,
  useReactFlow,
  useUpdateNodeInternals,
} from "@xyflow/react";
import { type DragEvent, useCallback, useEffect, useMemo, useRef, useState } from "react";
import { type CanvasActions, CanvasContext } from "../canvas/canvasContext";
import { NODE_TYPES } from "../canvas/NodeCard";
import { VIRTUALISE_ABOVE } from "../canvas/definition";
import { useColorMode } from "../theme";
import { useEditor, useEditorStore } from "./context";
import { NODE_TYPE_MIME } from "./Palette";
import { absolutePositions, loopAt } from "./loops";
import { connectionProblem } from "./transforms";

/** Half a card: a dropped node is centred under the pointer. */
const CARD_HALF: XYPosition = { x: 90, y: 24 };

export function EditorCanvas() {
  const colorMode = useColorMode();
  const store = useEditorStore();
  const { nodes, edges } = useEditor((s) => ({ nodes: s.nodes, edges: s.edges }));
  const actions = store.getState();
  const { screenToFlowPosition } = useReactFlow();
  // Fit a loaded workflow once; an empty canvas keeps its viewport (fitting the first
  // dropped node would move it away from where it was dropped).
  const [fitOnLoad] = useState(() => store.getState().nodes.length > 0);

  const isValidConnection = useCallback(
    (connection: Connection | Edge) =>
      connectionProblem(store.getState(), {
        source: connection.source,
        target: connection.target,
        sourceHandle: connection.sourceHandle ?? null,
        targetHandle: connection.targetHandle ?? null,
      }) === null,
    [store],
  );

  const onDragOver = useCallback((event: DragEvent) => {
    if (!event.dataTransfer.types.includes(NODE_TYPE_MIME)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  }, []);

  const onDrop = useCallback(
    (event: DragEvent) => {
      const type = event.dataTransfer.getData(NODE_TYPE_MIME);
      if (!type) return;
      event.preventDefault();
      const at = screenToFlowPosition({ x: event.clientX, y: event.clientY });
      // Dropped inside a loop: the node joins its body (a position relative to the loop).
      const { nodes: current } = store.getState();
      const absolute = absolutePositions(current);
      const parent = loopAt(current, at, new Set(), absolute);
      const origin = parent === null ? { x: 0, y: 0 } : (absolute.get(parent) ?? { x: 0, y: 0 });
      store.getState().addNode(type, { x: at.x - origin.x - CARD_HALF.x, y: at.y - origin.y - CARD_HALF.y }, parent);
    },
    [screenToFlowPosition, store],
  );
  // A loop's resize is bracketed like a drag: one undo step.
  const canvasActions: CanvasActions = useMemo(
    () => ({ onResizeStart: () => store.getState().beginDrag(), onResizeEnd: () => store.getState().endDrag() }),
    [store],
  );

  return (
    <div className="editor-canvas" onDragOver={onDragOver} onDrop={onDrop}>
      <CanvasContext.Provider value={canvasActions}>
      <ReactFlow
        colorMode={colorMode}
        nodes={nodes}
        edges={edges}
        nodeTypes={NODE_TYPES}
        onNodesChange={actions.onNodesChange}
        onEdgesChange={actions.onEdgesChange}
        onConnect={actions.onConnect}
        isValidConnection={isValidConnection}
        onNodeDragStart={actions.beginDrag}
        onNodeDragStop={actions.endDrag}
        onSelectionDragStart={actions.beginDrag}
        onSelectionDragStop={actions.endDrag}
        // The page owns Delete/Backspace (one undo step for nodes and edges together).
        deleteKeyCode={null}
        onlyRenderVisibleElements={nodes.length > VIRTUALISE_ABOVE}
        fitView={fitOnLoad}
        fitViewOptions={{ padding: 0.2, maxZoom: 1.25 }}
        minZoom={0.1}
        aria-label="Workflow canvas"
      >
        <Background />
        <Controls showFitView={false} showInteractive={false} aria-label="Zoom" />
        <MiniMap pannable zoomable ariaLabel="Minimap" />
        <HandleSync />
      </ReactFlow>
      </CanvasContext.Provider>
    </div>
  );
}

/**
 * Tells React Flow when a node's output handles change (on_error `branch` adds `error`;
 * undo takes it away): handles are measured once, not on every render.
 */
function HandleSync() {
  const handles = useEditor((s) => s.nodes.map((n) => n.data.handles));
  const ids = useEditor((s) => s.nodes.map((n) => n.id));
  const updateNodeInternals = useUpdateNodeInternals();
  const previous = useRef(new Map<string, string[]>());
  useEffect(() => {
    const changed: string[] = [];
    const next = new Map<string, string[]>();
    ids.forEach((id, index) => {
      const current = handles[index] ?? [];
      const before = previous.current.get(id);
      if (before !== undefined && before !== current) changed.push(id);
      next.set(id, current);
    });
    previous.current = next;
    if (changed.length) updateNodeInternals(changed);
  }, [handles, ids, updateNodeInternals]);
  return null;
}
