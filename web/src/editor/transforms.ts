// Pure edits of the editor's graph (no React, no store): each takes nodes and edges and
// answers new ones, keeping every untouched node and edge object as it was so React
// Flow re-renders only what changed.
import type { Connection, XYPosition } from "@xyflow/react";
import {
  DEFAULT_HANDLE,
  type FlowEdge,
  type NodeSpec,
  type NodeTypeInfo,
  type StepNode,
  edgeId,
  flowEdge,
  flowNode,
  outputHandles,
  parentsFirst,
} from "../canvas/definition";

export interface Graph {
  nodes: StepNode[];
  edges: FlowEdge[];
}

export type NodeTypeMap = Record<string, NodeTypeInfo>;

/** What Ctrl/Cmd+C keeps: node specs with positions and the edges among them. */
export interface Clipboard {
  nodes: { spec: NodeSpec; position: XYPosition }[];
  edges: { source: string; target: string; sourceHandle: string }[];
}

/** How far a paste lands from the copied nodes (and a click-added node from a taken spot). */
export const PASTE_OFFSET = 40;

/**
 * `base` if no node has that id, else `base-2`, `base-3`, … (the first free one). A
 * base that already ends in `-<n>` counts on from its stem: a copy of `ai-2` is `ai-3`.
 */
export function uniqueId(base: string, taken: ReadonlySet<string>): string {
  const clean = base.trim() || "node";
  if (!taken.has(clean)) return clean;
  const stem = clean.replace(/-\d+$/, "") || clean;
  for (let n = 2; ; n++) {
    const candidate = `${stem}-${n}`;
    if (!taken.has(candidate)) return candidate;
  }
}

interface SchemaProperty {
  enum?: unknown[];
  default?: unknown;
}

/**
 * A new node's config: the defaults of its mode switches (`enum` fields such as
 * `source_type` or `method`), so the form opens on a choice. Required fields stay
 * empty on purpose: validation pins them on the node.
 */
export function defaultConfig(nodeType: Pick<NodeTypeInfo, "config_schema"> | undefined): Record<string, unknown> {
  const properties = (nodeType?.config_schema?.properties ?? {}) as Record<string, SchemaProperty>;
  const config: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(properties)) {
    if (Array.isArray(property.enum) && property.default !== undefined) config[name] = property.default;
  }
  return config;
}

/** A React Flow node for a spec, with the handles its type and on_error give it (a group for a loop). */
export function stepNode(spec: NodeSpec, position: XYPosition, nodeTypes: NodeTypeMap, selected = false): StepNode {
  return flowNode(spec, position, outputHandles(spec, nodeTypes[spec.type]), selected);
}

/**
 * `position`, moved down-right until no node of the same scope (`parent`) sits exactly
 * there (repeated clicks fan out).
 */
export function freePosition(nodes: readonly StepNode[], position: XYPosition, parent: string | null = null): XYPosition {
  const taken = new Set(
    nodes.filter((n) => (n.parentId ?? null) === parent).map((n) => `${Math.round(n.position.x)},${Math.round(n.position.y)}`),
  );
  let { x, y } = position;
  while (taken.has(`${Math.round(x)},${Math.round(y)}`)) {
    x += PASTE_OFFSET;
    y += PASTE_OFFSET;
  }
  return { x, y };
}

/**
 * The graph with a new node of `type` at `position` (selected alone), and its id. With
 * `parent`, the node goes into that loop's body and `position` is relative to the loop.
 */
export function addNode(
  graph: Graph,
  type: string,
  position: XYPosition,
  nodeTypes: NodeTypeMap,
  parent: string | null = null,
): Graph & { id: string } {
  const id = uniqueId(type, new Set(graph.nodes.map((n) => n.id)));
  const spec: NodeSpec = { id, type, config: defaultConfig(nodeTypes[type]), on_error: "fail" };
  if (parent !== null) spec.parent = parent;
  const nodes = graph.nodes.map(deselect);
  nodes.push(stepNode(spec, freePosition(graph.nodes, position, parent), nodeTypes, true));
  return { nodes, edges: graph.edges.map(deselectEdge), id };
}

/** Why a connection cannot be made, or null when it can. */
export function connectionProblem(graph: Graph, connection: Connection): string | null {
  const { source, target } = connection;
  if (!source || !target) return "an edge needs two ends";
  if (source === target) return "a node cannot connect to itself";
  const from = graph.nodes.find((n) => n.id === source);
  if (!from || !graph.nodes.some((n) => n.id === target)) return "unknown node";
  const handle = connection.sourceHandle ?? DEFAULT_HANDLE;
  if (!from.data.handles.includes(handle)) return `${source} has no ${handle} output`;
  // A loop's body is a graph of its own: the loop connects to the outside, its body
  // nodes to each other (the server refuses an edge across the boundary).
  const to = graph.nodes.find((n) => n.id === target);
  if ((from.parentId ?? null) !== (to?.parentId ?? null)) return "an edge cannot cross a loop's boundary";
  const id = edgeId(source, target, handle === DEFAULT_HANDLE ? null : handle);
  if (graph.edges.some((e) => e.id === id)) return "these nodes are already connected that way";
  return null;
}

/** The graph with an edge for `connection` (one per source, handle and target; no self-loops). */
export function connect(graph: Graph, connection: Connection): Graph {
  if (connectionProblem(graph, connection) !== null) return graph;
  return { nodes: graph.nodes, edges: [...graph.edges, flowEdge(connection.source, connection.target, connection.sourceHandle)] };
}


/** `ids` and every node inside them (a loop's body, nested loops' bodies too). */
export function withDescendants(nodes: readonly StepNode[], ids: Iterable<string>): Set<string> {
  const out = new Set(ids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const node of nodes) {
      if (node.parentId !== undefined && out.has(node.parentId) && !out.has(node.id)) {
        out.add(node.id);
        grew = true;
      }
    }
  }
  return out;
}

/** The graph without the given nodes (a loop with its body), every edge touching them, and the given edges. */
export function deleteElements(graph: Graph, nodeIds: Iterable<string>, edgeIds: Iterable<string> = []): Graph {
  const goneNodes = withDescendants(graph.nodes, nodeIds);
  const goneEdges = new Set(edgeIds);
  if (goneNodes.size === 0 && goneEdges.size === 0) return graph;
  return {
    nodes: graph.nodes.filter((n) => !goneNodes.has(n.id)),
    edges: graph.edges.filter((e) => !goneEdges.has(e.id) && !goneNodes.has(e.source) && !goneNodes.has(e.target)),
  };
}

/** The graph without its selected nodes and edges. */
export function deleteSelection(graph: Graph): Graph {
  return deleteElements(
    graph,
    graph.nodes.filter((n) => n.selected).map((n) => n.id),
    graph.edges.filter((e) => e.selected).map((e) => e.id),
  );
}

/** The given nodes (a loop with its body) and the edges between them, for a later paste. */
export function copyNodes(graph: Graph, ids: Iterable<string>): Clipboard {
  const chosen = withDescendants(graph.nodes, ids);
  return {
    nodes: graph.nodes
      .filter((n) => chosen.has(n.id))
      .map((n) => ({ spec: n.data.spec, position: { ...n.position } })),
    edges: graph.edges
      .filter((e) => chosen.has(e.source) && chosen.has(e.target))
      .map((e) => ({ source: e.source, target: e.target, sourceHandle: e.sourceHandle ?? DEFAULT_HANDLE })),
  };
}

/**
 * The graph with the clipboard's nodes added under fresh ids, `offset` pixels down-right
 * of where they were copied, their inner edges rewired to the new ids; the pasted nodes
 * end up the selection.
 */
export function paste(graph: Graph, clipboard: Clipboard, nodeTypes: NodeTypeMap, offset = PASTE_OFFSET): Graph & { ids: string[] } {
  if (clipboard.nodes.length === 0) return { ...graph, ids: [] };
  const taken = new Set(graph.nodes.map((n) => n.id));
  const renamed = new Map<string, string>();
  const nodes = graph.nodes.map(deselect);
  for (const { spec, position } of clipboard.nodes) {
    const id = uniqueId(spec.id, taken);
    taken.add(id);
    renamed.set(spec.id, id);
    const copy: NodeSpec = structuredClone({ ...spec, id });
    delete copy.position;
    // A body node pasted with its loop goes into the copy; alone, into its loop if it is still there.
    const parent = typeof spec.parent === "string" ? spec.parent : null;
    const copiedParent = parent === null ? undefined : renamed.get(parent);
    const inside = copiedParent !== undefined || (parent !== null && graph.nodes.some((n) => n.id === parent));
    if (copiedParent !== undefined) copy.parent = copiedParent;
    else if (!inside) delete copy.parent;
    // Only the topmost pasted nodes move: the others keep their place in their pasted loop.
    const shift = copiedParent !== undefined ? 0 : offset;
    nodes.push(stepNode(copy, { x: position.x + shift, y: position.y + shift }, nodeTypes, true));
  }
  const edges = graph.edges.map(deselectEdge);
  for (const edge of clipboard.edges) {
    const source = renamed.get(edge.source);
    const target = renamed.get(edge.target);
    if (source && target) edges.push(flowEdge(source, target, edge.sourceHandle));
  }
  return { nodes: parentsFirst(nodes), edges, ids: [...renamed.values()] };
}

/** Why `nextId` cannot replace `id`, or null when it can. */
export function renameProblem(graph: Graph, id: string, nextId: string): string | null {
  if (nextId.trim() === "") return "a node id cannot be empty";
  if (nextId !== id && graph.nodes.some((n) => n.id === nextId)) return `another node is already called ${nextId}`;
  return null;
}

/** The graph with node `id` renamed `nextId`, its edges following it. Unchanged when refused. */
export function renameNode(graph: Graph, id: string, nextId: string): Graph {
  if (id === nextId || renameProblem(graph, id, nextId) !== null) return graph;
  const nodes = graph.nodes.map((n) => {
    if (n.id === id) return { ...n, id: nextId, data: { ...n.data, spec: { ...n.data.spec, id: nextId } } };
    // A renamed loop keeps its body.
    if (n.parentId === id) return { ...n, parentId: nextId, data: { ...n.data, spec: { ...n.data.spec, parent: nextId } } };
    return n;
  });
  const edges = graph.edges.map((e) => {
    if (e.source !== id && e.target !== id) return e;
    const source = e.source === id ? nextId : e.source;
    const target = e.target === id ? nextId : e.target;
    return { ...e, ...flowEdge(source, target, e.sourceHandle) };
  });
  return { nodes, edges };
}

/**
 * The graph with node `id`'s spec replaced by `next` (renamed first when `next.id`
 * differs). Its handles are recomputed (on_error `branch` adds `error`), and edges
 * leaving a handle that no longer exists are dropped.
 */
export function updateSpec(graph: Graph, id: string, next: NodeSpec, nodeTypes: NodeTypeMap): Graph {
  let current = graph;
  let nodeId = id;
  if (next.id !== id) {
    const renamed = renameNode(graph, id, next.id);
    if (renamed !== graph) {
      current = renamed;
      nodeId = next.id;
    }
  }
  const spec = { ...next, id: nodeId };
  let handlesChanged = false;
  let handles: string[] = [];
  const nodes = current.nodes.map((n) => {
    if (n.id !== nodeId) return n;
    const plain = current.edges.some((e) => e.source === nodeId && (e.sourceHandle ?? DEFAULT_HANDLE) === DEFAULT_HANDLE);
    handles = outputHandles(spec, nodeTypes[spec.type], plain);
    handlesChanged = handles.join("\n") !== n.data.handles.join("\n");
    return { ...n, data: { ...n.data, spec, handles: handlesChanged ? handles : n.data.handles } };
  });
  const edges = handlesChanged
    ? current.edges.filter((e) => e.source !== nodeId || handles.includes(e.sourceHandle ?? DEFAULT_HANDLE))
    : current.edges;
  return { nodes, edges };
}

/** The graph with exactly the given nodes and edges selected (untouched objects kept). */
export function select(graph: Graph, nodeIds: Iterable<string>, edgeIds: Iterable<string> = []): Graph {
  const nodeSet = new Set(nodeIds);
  const edgeSet = new Set(edgeIds);
  return {
    nodes: graph.nodes.map((n) => (Boolean(n.selected) === nodeSet.has(n.id) ? n : { ...n, selected: nodeSet.has(n.id) })),
    edges: graph.edges.map((e) => (Boolean(e.selected) === edgeSet.has(e.id) ? e : { ...e, selected: edgeSet.has(e.id) })),
  };
}

function deselect(node: StepNode): StepNode {
  return node.selected ? { ...node, selected: false } : node;
}

function deselectEdge(edge: FlowEdge): FlowEdge {
  return edge.selected ? { ...edge, selected: false } : edge;
}
