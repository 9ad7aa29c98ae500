// A node's input, derived in the page the way the engine derives it.
//
// The engine does not store what a node received; it computes it when the node runs
// (src/ductwork/engine/executor.py, `_input_for` and `_edge_active`):
// - a node without incoming edges gets the run's inputs (`variables`);
// - otherwise its active incoming edges count: an edge is active when its source
//   completed and the edge has no branch or the branch the source took; when the
//   source failed with `on_error: "branch"` only its `error` edge is active, with
//   `on_error: "continue"` its plain and `error` edges are (the failed source's output
//   is then null);
// - one active source: that source's output; several: `{source_id: output}` in edge
//   order; none: the node did not run (it is skipped).
// The same facts are in the run record (outputs, branches, statuses), so the derivation
// here matches what the node saw for every node that ran.
import { type WorkflowDefinition, edgeEnds } from "../canvas/definition";
import type { NodeRunState } from "./statuses";

export type DerivedInput =
  | { kind: "run-inputs"; value: unknown }
  | { kind: "single"; source: string; value: unknown }
  | { kind: "merged"; sources: string[]; value: Record<string, unknown> }
  /** No incoming edge is active (yet): the node has no input. */
  | { kind: "none" };

function edgeActive(
  branch: string | null,
  source: NodeRunState | undefined,
  onError: string | undefined,
): boolean {
  if (!source) return false;
  if (source.status === "completed") return branch === null || branch === source.branch;
  if (source.status === "failed") {
    if (onError === "branch") return branch === "error";
    if (onError === "continue") return branch === null || branch === "error";
  }
  return false;
}

/** What node `nodeId` got (or gets) as `input`, from the run's definition, states and inputs. */
export function nodeInput(
  definition: WorkflowDefinition,
  states: Readonly<Record<string, NodeRunState>>,
  variables: unknown,
  nodeId: string,
): DerivedInput {
  const specs = new Map((definition.nodes ?? []).map((n) => [n.id, n]));
  const incoming = (definition.edges ?? []).map(edgeEnds).filter((e) => e.target === nodeId);
  if (incoming.length === 0) return { kind: "run-inputs", value: variables ?? {} };
  const sources: string[] = [];
  for (const edge of incoming) {
    const source = states[edge.source];
    if (edgeActive(edge.branch, source, specs.get(edge.source)?.on_error) && !sources.includes(edge.source)) {
      sources.push(edge.source);
    }
  }
  const outputOf = (id: string): unknown => {
    const state = states[id];
    return state?.status === "completed" ? state.output : null;
  };
  if (sources.length === 0) return { kind: "none" };
  if (sources.length === 1) return { kind: "single", source: sources[0]!, value: outputOf(sources[0]!) };
  return { kind: "merged", sources, value: Object.fromEntries(sources.map((id) => [id, outputOf(id)])) };
}
