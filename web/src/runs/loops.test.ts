import { describe, expect, it } from "vitest";
import type { WorkflowDefinition } from "../canvas/definition";
import { itemKey, loopProgress, statesForItems } from "./loops";
import { type NodeRunState, pendingNode } from "./statuses";
import { formatCost, nodeUsage, runUsage } from "./usage";

const state = (over: Partial<NodeRunState>): NodeRunState => ({ ...pendingNode(), ...over });

const definition: WorkflowDefinition = {
  name: "w",
  status: "active",
  nodes: [
    { id: "loop1", type: "loop", on_error: "fail" },
    { id: "sum", type: "ai-processor", on_error: "fail", parent: "loop1" },
  ],
  edges: [],
};

describe("loop items in a run", () => {
  it("reads item keys", () => {
    expect(itemKey("sum[12]")).toEqual({ node: "sum", index: 12 });
    expect(itemKey("sum")).toBeNull();
  });

  it("sums a loop's item records into progress", () => {
    const states = {
      loop1: state({ status: "running" }),
      "loop1[0]": state({ status: "completed" }),
      "loop1[1]": state({ status: "failed" }),
      "loop1[3]": state({ status: "running" }),
      "sum[0]": state({ status: "completed" }),
    };
    expect(loopProgress(definition, states)).toEqual({ loop1: { total: 4, completed: 1, failed: 1, running: 1 } });
    // A finished loop's output says how many items there were.
    const done = { ...states, loop1: state({ status: "completed", output: [1, 2, 3, 4, 5] }) };
    expect(loopProgress(definition, done).loop1?.total).toBe(5);
  });

  it("shows the picked item's states as the body nodes' own", () => {
    const states = { loop1: state({ status: "running" }), "sum[0]": state({ status: "completed", output: "a" }), "sum[1]": state({ status: "failed" }) };
    expect(statesForItems(definition, states, { loop1: 0 }).sum?.output).toBe("a");
    expect(statesForItems(definition, states, { loop1: 1 }).sum?.status).toBe("failed");
    expect(statesForItems(definition, states, { loop1: 7 }).sum?.status).toBe("pending");
    expect(statesForItems(definition, states, {}).sum?.status).toBe("pending");
    const flat: WorkflowDefinition = { ...definition, nodes: [{ id: "a", type: "start", on_error: "fail" }] };
    expect(statesForItems(flat, states, {})).toBe(states);
  });
});

describe("usage", () => {
  it("reads a node's and a run's usage, and formats costs", () => {
    expect(nodeUsage({ usage: { model: "m", prompt_tokens: 10, completion_tokens: 5, cost: 0.001 } })).toMatchObject({ total_tokens: 15, cost: 0.001, calls: 1 });
    expect(nodeUsage({})).toBeNull();
    expect(runUsage({ prompt_tokens: 0, completion_tokens: 0, calls: 0 })).toBeNull();
    expect(runUsage({ prompt_tokens: 3, completion_tokens: 4, calls: 1, cost: 0.5, unpriced_calls: 0, by_model: { m: { cost: 0.5 } } })).toMatchObject({
      total_tokens: 7,
      by_model: { m: { cost: 0.5, calls: 0 } },
    });
    expect(formatCost(null)).toBe("unpriced");
    expect(formatCost(1.234)).toBe("$1.23");
    expect(formatCost(0.00123)).toBe("$0.00123");
    expect(formatCost(0.5)).toBe("$0.50");
  });
});

describe("nested loops", () => {
  const nested: WorkflowDefinition = {
    name: "n",
    status: "active",
    nodes: [
      { id: "outer", type: "loop", on_error: "fail" },
      { id: "inner", type: "loop", on_error: "fail", parent: "outer" },
      { id: "b", type: "transformer", on_error: "fail", parent: "inner" },
    ],
    edges: [],
  };
  const states = {
    outer: state({ status: "running" }),
    "outer[0]": state({ status: "completed" }),
    "outer[1]": state({ status: "running" }),
    "inner[1]": state({ status: "running" }),
    "inner[1][0]": state({ status: "completed" }),
    "inner[1][1]": state({ status: "running" }),
    "b[1][0]": state({ status: "completed", output: "deep" }),
  };

  it("keys body states by the picked items, outermost first", () => {
    expect(statesForItems(nested, states, { outer: 1, inner: 0 }).b?.output).toBe("deep");
    expect(statesForItems(nested, states, { outer: 1 }).b?.status).toBe("pending");
    expect(statesForItems(nested, states, { outer: 1 }).inner?.status).toBe("running");
  });

  it("counts an inner loop's items within the picked outer item", () => {
    const progress = loopProgress(nested, states, { outer: 1 });
    expect(progress.outer).toEqual({ total: 2, completed: 1, failed: 0, running: 1 });
    expect(progress.inner).toEqual({ total: 2, completed: 1, failed: 0, running: 1 });
    expect(loopProgress(nested, states, {}).inner).toBeUndefined();
  });
});
