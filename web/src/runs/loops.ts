// Loops in a run (pure): a loop's per-item records `loop[i]` summed up as progress, and
// the body nodes' states of the item the user picked (`body[i]`) shown as the body
// nodes' own, so the canvas and the node details need no notion of items.
import { LOOP_TYPE, type LoopProgress, type WorkflowDefinition, parentOf } from "../canvas/definition";
import { type NodeRunState, pendingNode } from "./statuses";

/** `node[3]` -> {node: "node", index: 3}; null for a plain node id. */
export function itemKey(key: string): { node: string; index: number } | null {
  const match = /^(.*)\[(\d+)\]$/.exec(key);
  return match ? { node: match[1]!, index: Number(match[2]) } : null;
}

/**
 * Progress of each loop of `definition`: its item records (`loop[i]`) by status. The
 * total is the largest of the records' count and a count the loop's own state reports
 * (`count`/`total` in its metadata, or its finished output's length).
 */
export function loopProgress(
  definition: WorkflowDefinition,
  states: Readonly<Record<string, NodeRunState>>,
): Record<string, LoopProgress> {
  const loops = new Set((definition.nodes ?? []).filter((n) => n.type === LOOP_TYPE).map((n) => n.id));
  const out: Record<string, LoopProgress> = {};
  if (loops.size === 0) return out;
  for (const id of loops) out[id] = { total: 0, completed: 0, failed: 0, running: 0 };
  for (const [key, state] of Object.entries(states)) {
    const item = itemKey(key);
    const progress = item === null ? undefined : out[item.node];
    if (!item || !progress) continue;
    progress.total = Math.max(progress.total, item.index + 1);
    if (state.status === "completed") progress.completed += 1;
    else if (state.status === "failed") progress.failed += 1;
    else if (state.status === "running" || state.status === "retrying" || state.status === "waiting") progress.running += 1;
  }
  for (const id of loops) {
    const own = states[id];
    const progress = out[id]!;
    const reported = own ? (numberIn(own.meta, "count") ?? numberIn(own.meta, "total")) : null;
    if (reported !== null) progress.total = Math.max(progress.total, reported);
    if (own?.status === "completed" && Array.isArray(own.output)) progress.total = Math.max(progress.total, own.output.length);
  }
  return out;
}

function numberIn(meta: Readonly<Record<string, unknown>> | undefined, key: string): number | null {
  const value = meta?.[key];
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * `states` with each body node's state replaced by its state in the picked item of its
 * loop (`items[loop]`): `body[i]`, or pending when that item has not reached it. A body
 * node of a loop with no item picked shows pending. The same object when there is no
 * loop.
 */
export function statesForItems(
  definition: WorkflowDefinition,
  states: Readonly<Record<string, NodeRunState>>,
  items: Readonly<Record<string, number | null>>,
): Readonly<Record<string, NodeRunState>> {
  const body = (definition.nodes ?? []).filter((n) => parentOf(n) !== null);
  if (body.length === 0) return states;
  const out: Record<string, NodeRunState> = { ...states };
  for (const node of body) {
    const index = items[parentOf(node)!] ?? null;
    out[node.id] = (index === null ? undefined : states[`${node.id}[${index}]`]) ?? states[node.id] ?? PENDING;
  }
  return out;
}

const PENDING = pendingNode();
