// What a template or expression in a node can name (pure: no editor).
//
// The engine renders with the run's inputs as top-level names plus `outputs` (every
// node's output by id), `run` (id, workflow_id, started_at) and `input` (this node's
// input): see `base_names` in src/ductwork/engine/executor.py.
import type { Completion } from "@codemirror/autocomplete";
import type { WorkflowDefinition } from "../../canvas/definition";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The run input names a definition declares: `["a", {name: "b"}]` or `{a: …, b: …}`. */
export function inputNames(variables: WorkflowDefinition["variables"]): string[] {
  const raw: unknown[] = Array.isArray(variables) ? variables : Object.keys(variables ?? {});
  const names = raw.map((entry) =>
    typeof entry === "string"
      ? entry
      : typeof entry === "object" && entry !== null && typeof (entry as { name?: unknown }).name === "string"
        ? (entry as { name: string }).name
        : "",
  );
  // Only identifiers can be written as bare names in Jinja.
  return [...new Set(names.filter((name) => IDENTIFIER.test(name)))];
}

/** How a template reads another node's output. */
export function outputReference(nodeId: string): string {
  return IDENTIFIER.test(nodeId) ? `outputs.${nodeId}` : `outputs[${JSON.stringify(nodeId)}]`;
}

/**
 * The names a template in node `nodeId` can use: the run's inputs, `input`,
 * `outputs.<id>` of every other node, and the run's facts (`run.id`, ...). A filter
 * node's condition also sees `item` and `value`.
 */
export function completionsFor(definition: WorkflowDefinition, nodeId: string): Completion[] {
  const self = (definition.nodes ?? []).find((node) => node.id === nodeId);
  const options: Completion[] = inputNames(definition.variables).map((name) => ({
    label: name,
    type: "variable",
    detail: "run input",
  }));
  options.push({ label: "input", type: "variable", detail: "this node's input" });
  if (self?.type === "filter") {
    options.push({ label: "item", type: "variable", detail: "the list item" });
    options.push({ label: "value", type: "variable", detail: "a scalar item" });
  }
  for (const node of definition.nodes ?? []) {
    if (node.id === nodeId) continue;
    options.push({
      label: outputReference(node.id),
      type: "property",
      detail: node.name ? `${node.name} (${node.type})` : node.type,
    });
  }
  for (const key of ["id", "workflow_id", "started_at"]) {
    options.push({ label: `run.${key}`, type: "property", detail: "this run" });
  }
  return options;
}
