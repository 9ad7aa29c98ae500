import { describe, expect, it } from "vitest";
import { type WorkflowDefinition, toFlow } from "../canvas/definition";
import { applyPins, issueLine, pinIssues } from "./pins";

const DEFINITION: WorkflowDefinition = {
  name: "w",
  status: "active",
  nodes: [
    { id: "start", type: "start", on_error: "fail" },
    { id: "ai", type: "ai-processor", on_error: "fail" },
  ],
  edges: [{ from: "start", to: "ai" }],
};

describe("pinIssues", () => {
  it("pins by node id and keeps workflow problems general", () => {
    const pins = pinIssues(
      [
        { node_id: "ai", field: "config.prompt", message: "Field required" },
        { node_id: null, field: "name", message: "String should have at least 1 character" },
        { node_id: "zz", field: "edges[1].to", message: "edge refers to unknown node 'zz'" },
      ],
      DEFINITION,
    );
    expect(pins.byNode).toEqual({ ai: [{ node_id: "ai", field: "config.prompt", message: "Field required" }] });
    expect(pins.general.map((i) => i.field)).toEqual(["name", "edges[1].to"]);
  });

  it("maps nodes[i] paths (both spellings) to the node and a field relative to it", () => {
    const pins = pinIssues(
      [
        { node_id: null, field: "nodes[1].timeout_seconds", message: "Input should be a valid number" },
        { node_id: "ai", field: "nodes.1.retry.max_attempts", message: "too many" },
        { node_id: null, field: "nodes[0]", message: "duplicate node id" },
        { node_id: null, field: "nodes[7].type", message: "out of range" },
      ],
      DEFINITION,
    );
    expect(pins.byNode.ai?.map((i) => i.field)).toEqual(["timeout_seconds", "retry.max_attempts"]);
    expect(pins.byNode.start).toEqual([{ node_id: "start", field: "id", message: "duplicate node id" }]);
    expect(pins.general).toHaveLength(1);
  });
});

describe("applyPins", () => {
  it("sets the card lines and keeps unchanged nodes", () => {
    const { nodes } = toFlow(DEFINITION);
    const pinned = applyPins(nodes, { ai: [{ node_id: "ai", field: "config.prompt", message: "Field required" }] });
    expect(pinned[0]).toBe(nodes[0]);
    expect(pinned[1]?.data.overlay?.issues).toEqual(["prompt: Field required"]);
    expect(applyPins(pinned, { ai: [{ node_id: "ai", field: "config.prompt", message: "Field required" }] })).toBe(pinned);
    expect(applyPins(pinned, {})[1]?.data.overlay?.issues).toBeUndefined();
  });

  it("writes a line without a field as the message alone", () => {
    expect(issueLine({ node_id: null, field: null, message: "no start node" })).toBe("no start node");
  });
});
