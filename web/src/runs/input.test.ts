import { describe, expect, it } from "vitest";
import type { WorkflowDefinition } from "../canvas/definition";
import { nodeInput } from "./input";
import { type NodeRunState, pendingNode } from "./statuses";

const done = (output: unknown, branch: string | null = null): NodeRunState => ({
  ...pendingNode(),
  status: "completed",
  output,
  branch,
});
const failed = (): NodeRunState => ({ ...pendingNode(), status: "failed", output: { partial: true } });

const definition = {
  name: "w",
  nodes: [
    { id: "start", type: "start" },
    { id: "check", type: "condition", config: {} },
    { id: "yes", type: "transformer" },
    { id: "no", type: "transformer" },
    { id: "fetch", type: "webhook", on_error: "continue" },
    { id: "guard", type: "webhook", on_error: "branch" },
    { id: "join", type: "end" },
  ],
  edges: [
    { from: "start", to: "check" },
    { source: "check", target: "yes", sourceHandle: "true" },
    { from: "check", to: "no", branch: false },
    { from: "yes", to: "join" },
    { from: "no", to: "join" },
    { from: "start", to: "fetch" },
    { from: "fetch", to: "join" },
    { from: "start", to: "guard" },
    { from: "guard", to: "no", branch: "error" },
  ],
} as unknown as WorkflowDefinition;

describe("nodeInput", () => {
  it("gives an entry node the run's inputs", () => {
    expect(nodeInput(definition, {}, { user: "ada" }, "start")).toEqual({ kind: "run-inputs", value: { user: "ada" } });
  });

  it("gives a node with one active source that source's output", () => {
    const states = { start: done({ a: 1 }) };
    expect(nodeInput(definition, states, {}, "check")).toEqual({ kind: "single", source: "start", value: { a: 1 } });
  });

  it("follows only the branch a condition took (either edge spelling)", () => {
    const states = { start: done(1), check: done(true, "true") };
    expect(nodeInput(definition, states, {}, "yes")).toMatchObject({ kind: "single", source: "check" });
    expect(nodeInput(definition, states, {}, "no")).toEqual({ kind: "none" });
    const other = { start: done(1), check: done(false, "false") };
    expect(nodeInput(definition, other, {}, "no")).toMatchObject({ kind: "single", source: "check", value: false });
  });

  it("merges several active sources by id; a failed on_error=continue source gives null", () => {
    const states = { yes: done("y"), no: { ...pendingNode(), status: "skipped" as const }, fetch: failed() };
    expect(nodeInput(definition, states, {}, "join")).toEqual({
      kind: "merged",
      sources: ["yes", "fetch"],
      value: { yes: "y", fetch: null },
    });
  });

  it("takes a failed on_error=branch source only through its error edge", () => {
    const states = { check: done(true, "true"), guard: failed() };
    expect(nodeInput(definition, states, {}, "no")).toEqual({ kind: "single", source: "guard", value: null });
  });

  it("has no input before any source completed", () => {
    expect(nodeInput(definition, { start: { ...pendingNode(), status: "running" } }, {}, "check")).toEqual({
      kind: "none",
    });
  });
});
