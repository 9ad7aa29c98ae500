// The run's canvas: the editor's React Flow drawing, read-only, with live overlays.
import {
  Controls,
  MiniMap,
  type NodeChange,
  type NodeMouseHandler,
  type OnSelectionChangeFunc,
  ReactFlow,
  useNodesState,
} from "@xyflow/react";
import { memo, useCallback, useEffect, useMemo, useRef } from "react";
import { type CanvasActions, CanvasContext } from "../canvas/canvasContext";
import { NODE_TYPES } from "../canvas/NodeCard";
import {
  type LoopProgress,
  type NodeTypeInfo,
  type StepNode,
  VIRTUALISE_ABOVE,
  type WorkflowDefinition,
  applyCanvasChanges,
  toFlow,
} from "../canvas/definition";
import { useColorMode } from "../theme";
import { withOverlays } from "./overlay";
import type { NodeRunState } from "./statuses";

interface RunCanvasProps {
  definition: WorkflowDefinition;
  nodeTypes: Readonly<Record<string, NodeTypeInfo>>;
  states: Readonly<Record<string, NodeRunState>>;
  runFinished: boolean;
  onSelect: (nodeId: string) => void;
  /** Each loop's items so far (shown on the loop). */
  loops?: Readonly<Record<string, LoopProgress>>;
  /** The loops' picked items and how to pick one (body nodes show that item's states). */
  items?: CanvasActions;
}

/** How many of a large run's first nodes the canvas opens on (see `large`). */
const FIRST_NODES_SHOWN = 60;

const NO_LOOPS: Readonly<Record<string, LoopProgress>> = {};
const NO_ACTIONS: CanvasActions = {};

const MINIMAP_COLOURS: Record<string, string> = {
  running: "#2456d6",
  retrying: "#2456d6",
  waiting: "#b7791f",
  completed: "#1f8a4c",
  failed: "#b42318",
};

function minimapColour(node: StepNode): string {
  return MINIMAP_COLOURS[node.data.overlay?.status ?? ""] ?? "#8a90a0";
}

function RunCanvasView({ definition, nodeTypes, states, runFinished, onSelect, loops = NO_LOOPS, items = NO_ACTIONS }: RunCanvasProps) {
  const colorMode = useColorMode();
  const flow = useMemo(() => toFlow(definition, nodeTypes), [definition, nodeTypes]);
  const [nodes, setNodes] = useNodesState<StepNode>(withOverlays(flow.nodes, states, runFinished, loops));
  const onNodesChange = useCallback(
    (changes: NodeChange<StepNode>[]) => setNodes((current) => applyCanvasChanges(changes, current)),
    [setNodes],
  );

  // Each stream frame: only the cards whose overlay changed get a new data object. A new
  // definition (a retry on the workflow's current version) redraws the graph.
  const drawn = useRef(flow);
  useEffect(() => {
    const redraw = drawn.current !== flow;
    drawn.current = flow;
    setNodes((current) => withOverlays(redraw ? flow.nodes : current, states, runFinished, loops));
  }, [flow, states, runFinished, loops, setNodes]);

  // A large run opens on its first nodes, not the whole graph shrunk to fit: every card
  // on screen is measured and drawn, and 10,000 of them at 10% are a grey blur anyway.
  const large = flow.nodes.length > VIRTUALISE_ABOVE;
  const fitViewOptions = useMemo(
    () => (large ? { nodes: flow.nodes.slice(0, FIRST_NODES_SHOWN).map((n) => ({ id: n.id })) } : undefined),
    [flow, large],
  );

  const onNodeClick: NodeMouseHandler<StepNode> = useCallback((_, node) => onSelect(node.id), [onSelect]);
  // Keyboard selection (Enter on a focused card) arrives here, not as a click.
  const onSelectionChange: OnSelectionChangeFunc<StepNode> = useCallback(
    ({ nodes: selected }) => {
      if (selected.length === 1 && selected[0]) onSelect(selected[0].id);
    },
    [onSelect],
  );

  return (
    <div className="run-canvas">
      <CanvasContext.Provider value={items}>
      <ReactFlow<StepNode>
        colorMode={colorMode}
        nodes={nodes}
        edges={flow.edges}
        nodeTypes={NODE_TYPES}
        onNodesChange={onNodesChange}
        onNodeClick={onNodeClick}
        onSelectionChange={onSelectionChange}
        nodesDraggable={false}
        nodesConnectable={false}
        edgesFocusable={false}
        deleteKeyCode={null}
        onlyRenderVisibleElements={large}
        fitView
        fitViewOptions={fitViewOptions}
        minZoom={0.1}
        aria-label="Run canvas"
      >
        <MiniMap<StepNode> nodeColor={minimapColour} pannable zoomable ariaLabel="Mini map" />
        <Controls showInteractive={false} />
      </ReactFlow>
      </CanvasContext.Provider>
    </div>
  );
}

/** Memoised: re-renders when the statuses change, not on the page's other updates. */
export const RunCanvas = memo(RunCanvasView);
