// A workflow definition as React Flow nodes and edges, and back (pure: no React, no I/O).
//
// The editor and the run view draw the same canvas from the same conversion. The API
// takes React Flow's edge spelling (`source`/`target`/`sourceHandle`, see EdgeSpec in
// src/ductwork/models.py) but answers in the seed's `from`/`to`/`branch`; both are read
// here, and `toDefinition` writes `from`/`to`/`branch`, the spelling the server stores.
import {
  type Edge,
  type Node,
  type NodeChange,
  type NodeHandle,
  Position,
  type XYPosition,
  applyNodeChanges,
} from "@xyflow/react";
import type { Schemas } from "../api/client";

export type NodeSpec = Schemas["NodeSpec"];
export type EdgeSpec = Schemas["EdgeSpec"];
export type WorkflowDefinition = Schemas["WorkflowDefinition"];
export type NodeTypeInfo = Schemas["NodeType"];

/** The handle of a node without branches (its one output). */
export const DEFAULT_HANDLE = "out";
/** The branch a node with `on_error: "branch"` takes when it fails. */
export const ERROR_HANDLE = "error";
/** The React Flow node type every ductwork node is drawn with (see NodeCard.tsx). */
export const STEP = "step";
/**
 * The React Flow node type of a `loop` node: a resizable group whose body nodes are its
 * children (React Flow sub-flow: `parentId`, positions relative to the group).
 */
export const LOOP = "loop";
/** The ductwork node type drawn as a group (LoopCard.tsx). */
export const LOOP_TYPE = "loop";
/** A new loop group's size; a saved one keeps its own (NodeSpec `size`, an extra key). */
export const LOOP_SIZE = { width: 440, height: 240 } as const;

/** Per-node facts the canvas shows besides the spec (run status, validation pins). */
export interface StepOverlay {
  status?: string;
  cached?: boolean;
  attempts?: number;
  durationMs?: number | null;
  /** Validation problems pinned to this node (messages, field first when known). */
  issues?: string[];
  /** Streamed AI text while the node runs. */
  tokens?: string;
  /** A loop's items so far (from its per-item records `loop[i]`). */
  loop?: LoopProgress;
}

/** How far a loop's items got. */
export interface LoopProgress {
  total: number;
  completed: number;
  failed: number;
  running: number;
}

export interface StepData extends Record<string, unknown> {
  spec: NodeSpec;
  /** Output handles, in order: the node type's branches (or DEFAULT_HANDLE), then ERROR_HANDLE. */
  handles: string[];
  overlay?: StepOverlay;
}

export type StepNode = Node<StepData, typeof STEP | typeof LOOP>;
export type FlowEdge = Edge;

/**
 * The output handles of a node: named branches (`true`/`false`) or one, plus `error`.
 * A node with branches also gets the plain handle when `plain` (it has an edge without
 * a branch, followed whichever branch is taken): else that edge would have nowhere to
 * start from on the canvas.
 */
export function outputHandles(spec: NodeSpec, nodeType?: Pick<NodeTypeInfo, "branches">, plain = false): string[] {
  const branches = nodeType?.branches ?? [];
  // Conditions read best as true above false, whatever order the server lists them in.
  const ordered = [...branches].sort((a, b) => branchRank(a) - branchRank(b) || a.localeCompare(b));
  const handles = ordered.length > 0 ? ordered : [DEFAULT_HANDLE];
  if (ordered.length > 0 && plain) handles.push(DEFAULT_HANDLE);
  if (spec.on_error === "branch") handles.push(ERROR_HANDLE);
  return handles;
}

function branchRank(branch: string): number {
  return branch === "true" ? 0 : branch === "false" ? 1 : 2;
}

/** An edge spec's ends and branch, whichever spelling it came in. */
export function edgeEnds(edge: EdgeSpec): { source: string; target: string; branch: string | null } {
  const raw = edge as Record<string, unknown>;
  const source = String(raw.from ?? raw.source ?? "");
  const target = String(raw.to ?? raw.target ?? "");
  const branchValue = raw.branch ?? raw.sourceHandle ?? null;
  const branch =
    branchValue === null || branchValue === undefined
      ? null
      : typeof branchValue === "boolean"
        ? String(branchValue)
        : String(branchValue);
  return { source, target, branch };
}

/** A stable id for an edge: the same ends and branch always give the same id. */
export function edgeId(source: string, target: string, branch: string | null): string {
  return `${source}->${target}${branch === null ? "" : `#${branch}`}`;
}

/** A React Flow edge from `source`'s `handle` to `target` (labelled when it is a branch). */
export function flowEdge(source: string, target: string, handle: string | null | undefined): FlowEdge {
  const branch = handle && handle !== DEFAULT_HANDLE ? handle : null;
  return {
    id: edgeId(source, target, branch),
    source,
    target,
    sourceHandle: branch ?? DEFAULT_HANDLE,
    ...(branch === null ? {} : { label: branch }),
  };
}

const COLUMN_WIDTH = 260;
const ROW_HEIGHT = 120;

/** The loop a node belongs to (its `parent`, or React Flow's `parentId` as sent), or null. */
export function parentOf(spec: NodeSpec): string | null {
  const raw = spec as Record<string, unknown>;
  const parent = raw.parent ?? raw.parentId;
  return typeof parent === "string" && parent !== "" ? parent : null;
}

/**
 * Positions for nodes that have none: columns by longest path from a root, rows in
 * definition order, within each scope (the top-level graph, each loop's body: a body
 * node's position is relative to its loop). Nodes that have a position keep it.
 */
export function layout(definition: WorkflowDefinition): Record<string, XYPosition> {
  const scopes = new Map<string | null, NodeSpec[]>();
  for (const node of definition.nodes ?? []) {
    const parent = parentOf(node);
    const scope = scopes.get(parent) ?? [];
    scope.push(node);
    scopes.set(parent, scope);
  }
  const positions: Record<string, XYPosition> = {};
  for (const [parent, nodes] of scopes) {
    // Inside a loop: below the group's title bar.
    const offset = parent === null ? { x: 0, y: 0 } : { x: 20, y: 50 };
    Object.assign(positions, layoutScope(nodes, definition.edges ?? [], offset));
  }
  return positions;
}

function layoutScope(nodes: NodeSpec[], allEdges: EdgeSpec[], offset: XYPosition): Record<string, XYPosition> {
  const incoming = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  for (const edge of allEdges) {
    const { source, target } = edgeEnds(edge);
    incoming.get(target)?.push(source);
  }
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle (invalid, but drawable)
    visiting.add(id);
    let d = 0;
    for (const parent of incoming.get(id) ?? []) {
      if (incoming.has(parent)) d = Math.max(d, depthOf(parent) + 1);
    }
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const positions: Record<string, XYPosition> = {};
  for (const node of nodes) {
    const column = depthOf(node.id);
    const row = rows.get(column) ?? 0;
    rows.set(column, row + 1);
    positions[node.id] = node.position
      ? { x: Number(node.position.x ?? 0), y: Number(node.position.y ?? 0) }
      : { x: offset.x + column * COLUMN_WIDTH, y: offset.y + row * ROW_HEIGHT };
  }
  return positions;
}

/** A loop node's saved size (NodeSpec `size`), else the default. */
export function loopSize(spec: NodeSpec): { width: number; height: number } {
  const size = (spec as Record<string, unknown>).size as { width?: unknown; height?: unknown } | undefined;
  const width = typeof size?.width === "number" && size.width > 0 ? size.width : LOOP_SIZE.width;
  const height = typeof size?.height === "number" && size.height > 0 ? size.height : LOOP_SIZE.height;
  return { width, height };
}

/**
 * The React Flow node of a spec: a card, or a group for a loop; a body node gets its
 * loop as `parentId` (its position is relative to the loop).
 */
export function flowNode(spec: NodeSpec, position: XYPosition, handles: string[], selected?: boolean): StepNode {
  const node: StepNode = { id: spec.id, type: STEP, position, data: { spec, handles } };
  if (selected !== undefined) node.selected = selected;
  const parent = parentOf(spec);
  if (parent !== null) node.parentId = parent;
  if (spec.type === LOOP_TYPE) {
    const { width, height } = loopSize(spec);
    node.type = LOOP;
    node.width = width;
    node.height = height;
  }
  return node;
}

/**
 * `nodes` with every parent before its children (React Flow draws a child only after
 * its parent); otherwise in their order. Unchanged when already so.
 */
export function parentsFirst<T extends { id: string; parentId?: string }>(nodes: T[]): T[] {
  const ids = new Set(nodes.map((n) => n.id));
  const placed = new Set<string>();
  const out: T[] = [];
  let pending = nodes;
  while (pending.length > 0) {
    const rest: T[] = [];
    for (const node of pending) {
      // A missing parent (or a cycle, broken below) does not hold a node back.
      if (node.parentId === undefined || !ids.has(node.parentId) || placed.has(node.parentId)) {
        out.push(node);
        placed.add(node.id);
      } else rest.push(node);
    }
    if (rest.length === pending.length) {
      out.push(...rest);
      break;
    }
    pending = rest;
  }
  return out.every((n, i) => n === nodes[i]) ? nodes : out;
}

/**
 * The definition's nodes and edges for React Flow. Past VIRTUALISE_ABOVE nodes, where a
 * canvas draws only the visible cards, each card's size and handles are declared
 * (`withDeclaredHandles`).
 */
export function toFlow(
  definition: WorkflowDefinition,
  nodeTypes: Record<string, Pick<NodeTypeInfo, "branches">> = {},
): { nodes: StepNode[]; edges: FlowEdge[] } {
  const positions = layout(definition);
  const edges: FlowEdge[] = (definition.edges ?? []).map((edge) => {
    const { source, target, branch } = edgeEnds(edge);
    return flowEdge(source, target, branch);
  });
  const plain = new Set(edges.filter((e) => e.sourceHandle === DEFAULT_HANDLE).map((e) => e.source));
  const nodes = parentsFirst(
    (definition.nodes ?? []).map((spec) =>
      flowNode(spec, positions[spec.id] ?? { x: 0, y: 0 }, outputHandles(spec, nodeTypes[spec.type], plain.has(spec.id))),
    ),
  );
  return { nodes: nodes.length > VIRTUALISE_ABOVE ? nodes.map(withDeclaredHandles) : nodes, edges };
}

/**
 * The definition React Flow's nodes and edges describe, over `base` (name, variables,
 * status, metadata and any extra keys are kept). Positions are whole pixels; a body
 * node's stays relative to its loop, and `parent` follows React Flow's `parentId`; a
 * loop keeps its group's size.
 */
export function toDefinition(
  base: WorkflowDefinition,
  nodes: readonly StepNode[],
  edges: readonly FlowEdge[],
): WorkflowDefinition {
  return {
    ...base,
    nodes: nodes.map((node) => {
      const spec: NodeSpec = {
        ...node.data.spec,
        id: node.id,
        position: { x: Math.round(node.position.x), y: Math.round(node.position.y) },
      };
      delete spec.parentId;
      if (node.parentId) spec.parent = node.parentId;
      else delete spec.parent;
      if (node.type === LOOP) {
        const { width, height } = loopSize(spec);
        spec.size = { width: Math.round(node.width ?? width), height: Math.round(node.height ?? height) };
      }
      return spec;
    }),
    edges: edges.map((edge) => {
      const branch =
        edge.sourceHandle && edge.sourceHandle !== DEFAULT_HANDLE ? edge.sourceHandle : null;
      const spec: EdgeSpec = { from: edge.source, to: edge.target };
      if (branch !== null) spec.branch = branch;
      return spec;
    }),
  };
}

/** Past this many nodes, a canvas renders only the visible ones (panning stays smooth,
 * and a 10,000-node run draws what is on screen, not every card). */
export const VIRTUALISE_ABOVE = 150;

/** A card's size before React Flow measures it: `.step` in styles.css with a name, a type
 * and a row of badges (a guess only decides what is on screen until the card is drawn). */
export const CARD_SIZE = { width: 170, height: 83 } as const;
/** React Flow's handle size (style.css `.react-flow__handle`), which the run canvas keeps. */
const HANDLE_SIZE = 6;

/**
 * `node` with a size and handles declared, so React Flow can place it and its edges
 * without drawing it. Even with `onlyRenderVisibleElements`, React Flow renders every
 * card once whose handles it has not measured: 10,000 cards mounted, measured and
 * dropped before a large run's canvas shows. Declared handles stand in until the card
 * is drawn and measured (`applyCanvasChanges` drops them then). Loops keep theirs
 * measured: there are few, and their size is their own.
 */
export function withDeclaredHandles(node: StepNode): StepNode {
  if (node.type !== STEP || node.handles) return node;
  const { width, height } = CARD_SIZE;
  const half = HANDLE_SIZE / 2;
  const outputs = node.data.handles;
  const handles: NodeHandle[] = [
    { id: null, type: "target", position: Position.Left, x: -half, y: height / 2 - half, width: HANDLE_SIZE, height: HANDLE_SIZE },
    ...outputs.map(
      (id, index): NodeHandle => ({
        id,
        type: "source",
        position: Position.Right,
        // NodeCard spreads the outputs evenly down the right side.
        x: width - half,
        y: (height * (index + 1)) / (outputs.length + 1) - half,
        width: HANDLE_SIZE,
        height: HANDLE_SIZE,
      }),
    ),
  ];
  return { ...node, initialWidth: width, initialHeight: height, handles };
}

/**
 * React Flow's `applyNodeChanges`, and a measured card loses its declared handles: React
 * Flow takes a node's `handles` over the ones it measured whenever the node object is
 * new, so a card wider or taller than `CARD_SIZE` would keep its edges on the guess.
 */
export function applyCanvasChanges(changes: NodeChange<StepNode>[], nodes: StepNode[]): StepNode[] {
  const next = applyNodeChanges(changes, nodes);
  const measured = new Set(changes.flatMap((change) => (change.type === "dimensions" ? [change.id] : [])));
  if (measured.size === 0) return next;
  return next.map((node) => {
    if (!node.handles || !measured.has(node.id)) return node;
    const { handles: _declared, ...drawn } = node;
    return drawn;
  });
}
