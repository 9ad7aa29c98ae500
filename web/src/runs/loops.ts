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
 * The key of a node's state for the picked items: `b` at the top level, `b[3]` in item 3
 * of its loop, `b[3][1]` in item 1 of a loop nested in item 3 (outermost first); null
 * when one of its loops has no item picked.
 */
export function stateKey(
  specs: ReadonlyMap<string, { parent?: unknown }>,
  nodeId: string,
  items: Readonly<Record<string, number | null>>,
): string | null {
  const indexes: number[] = [];
  let parent = parentId(specs.get(nodeId));
  // The guard stops at a parent cycle (refused at save time, but drawn).
  for (let guard = 0; parent !== null && guard < specs.size; guard++) {
    const index = items[parent] ?? null;
    if (index === null) return null;
    indexes.unshift(index);
    parent = parentId(specs.get(parent));
  }
  return nodeId + indexes.map((i) => `[${i}]`).join("");
}

function parentId(spec: { parent?: unknown } | undefined): string | null {
  const raw = spec as Record<string, unknown> | undefined;
  const parent = raw?.parent ?? raw?.parentId;
  return typeof parent === "string" && parent !== "" ? parent : null;
}

function specsOf(definition: WorkflowDefinition): Map<string, { parent?: unknown }> {
  return new Map((definition.nodes ?? []).map((n) => [n.id, n as { parent?: unknown }]));
}

/**
 * Progress of each loop of `definition`: its item records (`loop[i]`; for a loop in a
 * body, those of the picked outer item: `inner[3][i]`) by status. The total is the
 * largest of the records' count, a count the loop's own state reports (`count`/`total`
 * in its metadata) and its finished output's length.
 */
export function loopProgress(
  definition: WorkflowDefinition,
  states: Readonly<Record<string, NodeRunState>>,
  items: Readonly<Record<string, number | null>> = {},
): Record<string, LoopProgress> {
  const specs = specsOf(definition);
  const prefixes = new Map<string, string>();
  for (const node of definition.nodes ?? []) {
    if (node.type !== LOOP_TYPE) continue;
    const key = stateKey(specs, node.id, items);
    if (key !== null) prefixes.set(key, node.id);
  }
  const out: Record<string, LoopProgress> = {};
  if (prefixes.size === 0) return out;
  for (const id of prefixes.values()) out[id] = { total: 0, completed: 0, failed: 0, running: 0 };
  for (const [key, state] of Object.entries(states)) {
    const item = itemKey(key);
    const loop = item === null ? undefined : prefixes.get(item.node);
    if (!item || loop === undefined) continue;
    const progress = out[loop]!;
    progress.total = Math.max(progress.total, item.index + 1);
    if (state.status === "completed") progress.completed += 1;
    else if (state.status === "failed") progress.failed += 1;
    else if (state.status === "running" || state.status === "retrying" || state.status === "waiting") progress.running += 1;
  }
  for (const [key, id] of prefixes) {
    const own = states[key];
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
 * `states` with each body node's state replaced by its state in the picked items of its
 * loops (`body[i]`, see stateKey), or pending when no item is picked or that item has
 * not reached it. The same object when there is no loop.
 */
export function statesForItems(
  definition: WorkflowDefinition,
  states: Readonly<Record<string, NodeRunState>>,
  items: Readonly<Record<string, number | null>>,
): Readonly<Record<string, NodeRunState>> {
  const body = (definition.nodes ?? []).filter((n) => parentOf(n) !== null);
  if (body.length === 0) return states;
  const specs = specsOf(definition);
  const out: Record<string, NodeRunState> = { ...states };
  for (const node of body) {
    const key = stateKey(specs, node.id, items);
    out[node.id] = (key === null ? undefined : states[key]) ?? PENDING;
  }
  return out;
}

const PENDING = pendingNode();
