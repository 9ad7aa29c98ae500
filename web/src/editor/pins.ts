// Validation problems pinned to the nodes they concern (pure).
//
// `POST /workflows/validate` answers `{valid, issues}` with `node_id` set and fields
// relative to the node (`config.prompt`); a 422 (the body did not parse) may name a
// node only through its path (`nodes[1].timeout_seconds`, or pydantic's
// `nodes.1.timeout_seconds`). Both end up here as one shape.
import type { StepNode, WorkflowDefinition } from "../canvas/definition";
import type { ValidationIssue } from "./panel/types";

export type { ValidationIssue };

export interface PinnedIssues {
  /** Problems by node id; `field` relative to the node (`config.prompt`, `timeout_seconds`). */
  byNode: Record<string, ValidationIssue[]>;
  /** Problems of the workflow as a whole, or of nodes it does not have. */
  general: ValidationIssue[];
}

const NODE_PATH = /^nodes(?:\[(\d+)\]|\.(\d+))(?:\.(.*))?$/;

/** Every issue under the node it names (by id, else by its `nodes[i]` path), or general. */
export function pinIssues(issues: readonly ValidationIssue[], definition: WorkflowDefinition): PinnedIssues {
  const nodes = definition.nodes ?? [];
  const ids = new Set(nodes.map((n) => n.id));
  const byNode: Record<string, ValidationIssue[]> = {};
  const general: ValidationIssue[] = [];
  for (const issue of issues) {
    const path = issue.field ? NODE_PATH.exec(issue.field) : null;
    const index = path ? Number(path[1] ?? path[2]) : -1;
    const fromPath = index >= 0 ? nodes[index]?.id : undefined;
    const nodeId = issue.node_id && ids.has(issue.node_id) ? issue.node_id : fromPath;
    if (nodeId === undefined) {
      general.push(issue);
      continue;
    }
    // `nodes[1]` alone (e.g. "duplicate node id") concerns the node's id.
    const field = path ? (path[3] ?? "id") : (issue.field ?? null);
    (byNode[nodeId] ??= []).push({ ...issue, node_id: nodeId, field });
  }
  return { byNode, general };
}

/** A pinned issue as one line on a node card: `prompt: Field required`. */
export function issueLine(issue: ValidationIssue): string {
  const field = issue.field?.replace(/^config\./, "");
  return field ? `${field}: ${issue.message}` : issue.message;
}

/**
 * The nodes with `data.overlay.issues` set from `byNode`. Nodes whose lines did not
 * change are the same objects, so React Flow redraws only the cards whose pins moved.
 */
export function applyPins(nodes: StepNode[], byNode: Record<string, ValidationIssue[]>): StepNode[] {
  let changed = false;
  const next = nodes.map((node) => {
    const lines = (byNode[node.id] ?? []).map(issueLine);
    const current = node.data.overlay?.issues ?? [];
    if (lines.length === current.length && lines.every((line, i) => line === current[i])) return node;
    changed = true;
    const overlay = { ...node.data.overlay };
    if (lines.length) overlay.issues = lines;
    else delete overlay.issues;
    return { ...node, data: { ...node.data, overlay } };
  });
  return changed ? next : nodes;
}
