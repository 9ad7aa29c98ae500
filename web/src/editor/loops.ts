// Loop bodies on the canvas (pure: no React, no store): which loop a point or a dragged
// node falls into, and moving nodes into and out of a loop's body.
//
// A body node is a React Flow child of its loop (`parentId`, position relative to the
// loop). Nodes are not confined to their loop (no `extent: "parent"`): dropping a node
// inside a loop's rectangle puts it in that body, dropping it outside takes it out;
// its spot on the canvas stays where it was dropped.
import type { XYPosition } from "@xyflow/react";
import { LOOP, type StepNode, loopSize, parentsFirst } from "../canvas/definition";
import type { Graph } from "./transforms";
import { withDescendants } from "./transforms";

/** A card's size before React Flow has measured it. */
export const CARD_SIZE = { width: 180, height: 48 } as const;

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A node's size: set (a loop), measured, or a card's. */
export function sizeOf(node: StepNode): { width: number; height: number } {
  if (node.type === LOOP) {
    const fallback = loopSize(node.data.spec);
    return { width: node.width ?? node.measured?.width ?? fallback.width, height: node.height ?? node.measured?.height ?? fallback.height };
  }
  return { width: node.measured?.width ?? node.width ?? CARD_SIZE.width, height: node.measured?.height ?? node.height ?? CARD_SIZE.height };
}

/** Where each node sits on the canvas (its own position plus its loops'). */
export function absolutePositions(nodes: readonly StepNode[]): Map<string, XYPosition> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const out = new Map<string, XYPosition>();
  const resolve = (node: StepNode, depth: number): XYPosition => {
    const known = out.get(node.id);
    if (known) return known;
    const parent = node.parentId === undefined ? undefined : byId.get(node.parentId);
    // depth guards against a parent cycle (a hand-edited definition).
    const origin = parent && depth < nodes.length ? resolve(parent, depth + 1) : { x: 0, y: 0 };
    const at = { x: origin.x + node.position.x, y: origin.y + node.position.y };
    out.set(node.id, at);
    return at;
  };
  for (const node of nodes) resolve(node, 0);
  return out;
}

/**
 * The innermost loop whose rectangle holds `point`, skipping the loops in `exclude`
 * (a dragged loop cannot go into itself or its own body); null for the top level.
 */
export function loopAt(
  nodes: readonly StepNode[],
  point: XYPosition,
  exclude: ReadonlySet<string> = new Set(),
  absolute: Map<string, XYPosition> = absolutePositions(nodes),
): string | null {
  let best: { id: string; depth: number } | null = null;
  for (const node of nodes) {
    if (node.type !== LOOP || exclude.has(node.id)) continue;
    const at = absolute.get(node.id);
    if (!at) continue;
    const { width, height } = sizeOf(node);
    if (point.x < at.x || point.y < at.y || point.x > at.x + width || point.y > at.y + height) continue;
    const depth = depthOf(nodes, node.id);
    if (best === null || depth > best.depth) best = { id: node.id, depth };
  }
  return best?.id ?? null;
}

function depthOf(nodes: readonly StepNode[], id: string): number {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  let depth = 0;
  let current = byId.get(id);
  while (current?.parentId !== undefined && depth < nodes.length) {
    depth += 1;
    current = byId.get(current.parentId);
  }
  return depth;
}

/**
 * The graph after nodes `ids` were dropped where they now are: each goes into the loop
 * under its centre (or out to the top level), keeping its spot on the canvas. Edges that
 * would then cross a loop's boundary are dropped (the server refuses them). Unchanged
 * (the same object) when no node changed scope.
 */
export function reparent(graph: Graph, ids: Iterable<string>): Graph {
  const absolute = absolutePositions(graph.nodes);
  const changes = new Map<string, string | null>();
  const moving = new Set(ids);
  for (const id of moving) {
    const node = graph.nodes.find((n) => n.id === id);
    if (!node) continue;
    // A node whose loop moves with it stays in that loop.
    if (node.parentId !== undefined && moving.has(node.parentId)) continue;
    const at = absolute.get(id);
    if (!at) continue;
    const { width, height } = sizeOf(node);
    const centre = { x: at.x + width / 2, y: at.y + height / 2 };
    const target = loopAt(graph.nodes, centre, withDescendants(graph.nodes, [id]), absolute);
    if (target !== (node.parentId ?? null)) changes.set(id, target);
  }
  if (changes.size === 0) return graph;
  const nodes = graph.nodes.map((node) => {
    if (!changes.has(node.id)) return node;
    const target = changes.get(node.id) ?? null;
    const at = absolute.get(node.id) ?? node.position;
    const origin = target === null ? { x: 0, y: 0 } : (absolute.get(target) ?? { x: 0, y: 0 });
    const spec = { ...node.data.spec };
    const moved: StepNode = { ...node, position: { x: at.x - origin.x, y: at.y - origin.y }, data: { ...node.data, spec } };
    if (target === null) {
      delete moved.parentId;
      delete spec.parent;
    } else {
      moved.parentId = target;
      spec.parent = target;
    }
    return moved;
  });
  const scope = new Map(nodes.map((n) => [n.id, n.parentId ?? null]));
  const edges = graph.edges.filter((e) => scope.get(e.source) === scope.get(e.target));
  return { nodes: parentsFirst(nodes), edges: edges.length === graph.edges.length ? graph.edges : edges };
}
