import { describe, expect, it } from "vitest";
import type { WorkflowDefinition } from "../../canvas/definition";
import { completionsFor, inputNames } from "./completions";

const definition: WorkflowDefinition = {
  name: "wf",
  status: "active",
  metadata: {},
  variables: ["email", { name: "plan" }, "not a name", "email"],
  nodes: [
    { id: "start", type: "start", on_error: "fail" },
    { id: "ai1", type: "ai-processor", name: "Summarise", on_error: "fail" },
    { id: "my-node", type: "webhook", on_error: "fail" },
  ],
  edges: [],
};

describe("completionsFor", () => {
  it("offers inputs, input, other nodes' outputs and the run", () => {
    const labels = completionsFor(definition, "ai1").map((option) => option.label);
    expect(labels).toEqual(["email", "plan", "input", "outputs.start", 'outputs["my-node"]', "run.id", "run.workflow_id", "run.started_at"]);
    expect(completionsFor(definition, "start").find((option) => option.label === "outputs.ai1")?.detail).toBe("Summarise (ai-processor)");
  });

  it("adds a filter's item names", () => {
    const withFilter: WorkflowDefinition = { ...definition, nodes: [...definition.nodes!, { id: "f", type: "filter", on_error: "fail" }] };
    const labels = completionsFor(withFilter, "f").map((option) => option.label);
    expect(labels).toContain("item");
    expect(completionsFor(withFilter, "ai1").map((option) => option.label)).not.toContain("item");
  });
});

describe("inputNames", () => {
  it("reads a list of names or objects, or a dict's keys", () => {
    expect(inputNames(["a", { name: "b" }, 3])).toEqual(["a", "b"]);
    expect(inputNames({ x: 1, y: null })).toEqual(["x", "y"]);
    expect(inputNames(undefined as unknown as WorkflowDefinition["variables"])).toEqual([]);
  });
});
