// A workflow definition as React Flow nodes and edges, and back (pure: no React, no I/O).
//
// The editor and the run view draw the same canvas from the same conversion. The API
// takes React Flow's edge spelling (`source`/`target`/`sourceHandle`, see EdgeSpec in
// src/ductwork/models.py) but answers in the seed's `from`/`to`/`branch`; both are read
// here, and `toDefinition` writes `from`/`to`/`branch`, the spelling the server stores.
import type { Edge, Node, XYPosition } from "@xyflow/react";
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
}

export interface StepData extends Record<string, unknown> {
  spec: NodeSpec;
  /** Output handles, in order: the node type's branches (or DEFAULT_HANDLE), then ERROR_HANDLE. */
  handles: string[];
  overlay?: StepOverlay;
}

export type StepNode = Node<StepData, typeof STEP>;
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

/**
 * Positions for nodes that have none: columns by longest path from a root, rows in
 * definition order. Nodes that have a position keep it.
 */
export function layout(definition: WorkflowDefinition): Record<string, XYPosition> {
  const nodes = definition.nodes ?? [];
  const incoming = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  for (const edge of definition.edges ?? []) {
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
      : { x: column * COLUMN_WIDTH, y: row * ROW_HEIGHT };
  }
  return positions;
}

/** The definition's nodes and edges for React Flow. */
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
  const nodes: StepNode[] = (definition.nodes ?? []).map((spec) => ({
    id: spec.id,
    type: STEP,
    position: positions[spec.id] ?? { x: 0, y: 0 },
    data: { spec, handles: outputHandles(spec, nodeTypes[spec.type], plain.has(spec.id)) },
  }));
  return { nodes, edges };
}

/**
 * The definition React Flow's nodes and edges describe, over `base` (name, variables,
 * status, metadata and any extra keys are kept). Positions are whole pixels.
 */
export function toDefinition(
  base: WorkflowDefinition,
  nodes: readonly StepNode[],
  edges: readonly FlowEdge[],
): WorkflowDefinition {
  return {
    ...base,
    nodes: nodes.map((node) => ({
      ...node.data.spec,
      id: node.id,
      position: { x: Math.round(node.position.x), y: Math.round(node.position.y) },
    })),
    edges: edges.map((edge) => {
      const branch =
        edge.sourceHandle && edge.sourceHandle !== DEFAULT_HANDLE ? edge.sourceHandle : null;
      const spec: EdgeSpec = { from: edge.source, to: edge.target };
      if (branch !== null) spec.branch = branch;
      return spec;
    }),
  };
}
