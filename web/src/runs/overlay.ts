// Run facts on the canvas: each node card's overlay, replaced only where it changed.
import type { LoopProgress, StepNode, StepOverlay } from "../canvas/definition";
import type { NodeRunState } from "./statuses";

/**
 * How long a settled node took: its span (retries included), else its latency; null
 * while live and for nodes that never ran (pending, skipped).
 */
export function nodeDurationMs(node: NodeRunState): number | null {
  if (node.status === "pending" || node.status === "skipped") return null;
  if (node.status === "running" || node.status === "retrying" || node.status === "waiting") return null;
  const start = node.started_at ? Date.parse(node.started_at) : NaN;
  const end = node.finished_at ? Date.parse(node.finished_at) : NaN;
  if (!Number.isNaN(start) && !Number.isNaN(end) && end >= start) return end - start;
  return node.latency_ms;
}

/**
 * The card overlay of a node. A node nothing has reached yet shows "queued" while the
 * run goes on and "pending" once the run is over (it never ran). Streamed tokens show
 * only while the node runs; its output replaces them.
 */
export function nodeOverlay(node: NodeRunState, runFinished: boolean, loop?: LoopProgress): StepOverlay {
  const status = node.status === "pending" && !runFinished ? "queued" : node.status;
  const overlay: StepOverlay = {
    status,
    cached: node.cached,
    attempts: node.attempts,
    durationMs: nodeDurationMs(node),
  };
  if (node.tokens && (node.status === "running" || node.status === "retrying")) overlay.tokens = node.tokens;
  if (loop) overlay.loop = loop;
  return overlay;
}

function sameOverlay(a: StepOverlay | undefined, b: StepOverlay): boolean {
  return (
    a !== undefined &&
    a.status === b.status &&
    a.cached === b.cached &&
    a.attempts === b.attempts &&
    a.durationMs === b.durationMs &&
    a.tokens === b.tokens &&
    a.loop?.total === b.loop?.total &&
    a.loop?.completed === b.loop?.completed &&
    a.loop?.failed === b.loop?.failed &&
    a.loop?.running === b.loop?.running
  );
}

/**
 * `nodes` with each overlay brought up to date. Unchanged nodes keep their object (and
 * their `data`), so React Flow and the memoised NodeCard skip them; the array itself is
 * the same when nothing changed.
 */
export function withOverlays(
  nodes: StepNode[],
  states: Readonly<Record<string, NodeRunState>>,
  runFinished: boolean,
  loops: Readonly<Record<string, LoopProgress>> = {},
): StepNode[] {
  let changed = false;
  const next = nodes.map((node) => {
    const state = states[node.id];
    if (!state) return node;
    const overlay = nodeOverlay(state, runFinished, loops[node.id]);
    if (sameOverlay(node.data.overlay, overlay)) return node;
    changed = true;
    return { ...node, data: { ...node.data, overlay } };
  });
  return changed ? next : nodes;
}
