import { describe, expect, it } from "vitest";
import { type NodeTypeInfo, type StepNode, toFlow } from "../canvas/definition";
import {
  type Graph,
  addNode,
  connect,
  connectionProblem,
  copyNodes,
  defaultConfig,
  deleteElements,
  deleteSelection,
  paste,
  renameNode,
  uniqueId,
  updateSpec,
} from "./transforms";

const TYPES: Record<string, NodeTypeInfo> = Object.fromEntries(
  [
    { type: "start", branches: [] },
    { type: "ai-processor", branches: [] },
    { type: "end", branches: [] },
    { type: "condition", branches: ["false", "true"] },
    {
      type: "data-source",
      branches: [],
      config_schema: { properties: { source_type: { enum: ["api", "database"], default: "api" }, endpoint: { default: null } } },
    },
  ].map((t) => [t.type, { description: "", config_schema: {}, expression_fields: [], side_effects: false, ...t }]),
);

function seed(): Graph {
  return toFlow(
    {
      name: "seed",
      status: "active",
      nodes: [
        { id: "start", type: "start", on_error: "fail" },
        { id: "ai-processor", type: "ai-processor", on_error: "fail", config: { prompt: "hi" } },
        { id: "check", type: "condition", on_error: "fail", config: { condition: "true" } },
        { id: "end", type: "end", on_error: "fail" },
      ],
      edges: [
        { from: "start", to: "ai-processor" },
        { from: "ai-processor", to: "check" },
        { from: "check", to: "end", branch: "true" },
      ],
    },
    TYPES,
  );
}

describe("uniqueId", () => {
  it("keeps a free id and numbers a taken one", () => {
    expect(uniqueId("ai-processor", new Set())).toBe("ai-processor");
    expect(uniqueId("ai-processor", new Set(["ai-processor"]))).toBe("ai-processor-2");
    expect(uniqueId("ai-processor", new Set(["ai-processor", "ai-processor-2"]))).toBe("ai-processor-3");
    expect(uniqueId("ai-2", new Set(["ai-2"]))).toBe("ai-3");
  });
});

describe("addNode", () => {
  it("adds a selected node with a unique id and its type's mode defaults", () => {
    const graph = seed();
    const result = addNode(graph, "ai-processor", { x: 10, y: 20 }, TYPES);
    expect(result.id).toBe("ai-processor-2");
    const added = result.nodes.at(-1) as StepNode;
    expect(added).toMatchObject({ id: "ai-processor-2", position: { x: 10, y: 20 }, selected: true });
    expect(added.data.spec).toEqual({ id: "ai-processor-2", type: "ai-processor", config: {}, on_error: "fail" });
    expect(result.nodes.slice(0, -1)).toEqual(graph.nodes);
    expect(addNode(graph, "data-source", { x: 0, y: 0 }, TYPES).nodes.at(-1)?.data.spec.config).toEqual({ source_type: "api" });
  });

  it("moves off a spot another node already takes", () => {
    const once = addNode({ nodes: [], edges: [] }, "end", { x: 0, y: 0 }, TYPES);
    const twice = addNode(once, "end", { x: 0, y: 0 }, TYPES);
    expect(twice.nodes[1]?.position).toEqual({ x: 40, y: 40 });
    expect(twice.nodes[0]?.selected).toBe(false);
  });

  it("has no config for a type without a schema", () => {
    expect(defaultConfig(undefined)).toEqual({});
  });
});

describe("connect", () => {
  it("adds one edge per source, handle and target", () => {
    const graph = seed();
    const once = connect(graph, { source: "start", target: "end", sourceHandle: "out", targetHandle: null });
    expect(once.edges).toHaveLength(4);
    expect(once.edges.at(-1)).toMatchObject({ id: "start->end", source: "start", target: "end", sourceHandle: "out" });
    expect(connect(once, { source: "start", target: "end", sourceHandle: "out", targetHandle: null })).toBe(once);
  });

  it("labels branch edges and tells branches of one node apart", () => {
    const graph = seed();
    const next = connect(graph, { source: "check", target: "end", sourceHandle: "false", targetHandle: null });
    expect(next.edges.at(-1)).toMatchObject({ id: "check->end#false", sourceHandle: "false", label: "false" });
  });

  it("refuses self-loops, unknown nodes and handles the node lacks", () => {
    const graph = seed();
    expect(connectionProblem(graph, { source: "end", target: "end", sourceHandle: null, targetHandle: null })).toMatch(/itself/);
    expect(connect(graph, { source: "end", target: "end", sourceHandle: null, targetHandle: null })).toBe(graph);
    expect(connectionProblem(graph, { source: "zz", target: "end", sourceHandle: null, targetHandle: null })).toMatch(/unknown/);
    expect(connectionProblem(graph, { source: "start", target: "end", sourceHandle: "error", targetHandle: null })).toMatch(/no error output/);
  });
});

describe("delete", () => {
  it("removes nodes with their edges, and chosen edges", () => {
    const graph = seed();
    const next = deleteElements(graph, ["ai-processor"], ["check->end#true"]);
    expect(next.nodes.map((n) => n.id)).toEqual(["start", "check", "end"]);
    expect(next.edges).toEqual([]);
  });

  it("deletes the selection, and nothing when nothing is selected", () => {
    const graph = seed();
    expect(deleteSelection(graph)).toBe(graph);
    const selected = { ...graph, nodes: graph.nodes.map((n) => (n.id === "end" ? { ...n, selected: true } : n)) };
    expect(deleteSelection(selected).nodes.map((n) => n.id)).toEqual(["start", "ai-processor", "check"]);
    expect(deleteSelection(selected).edges).toHaveLength(2);
  });
});

describe("copy and paste", () => {
  it("pastes copies under fresh ids, offset, with their inner edges, selected", () => {
    const graph = seed();
    const clip = copyNodes(graph, ["ai-processor", "check"]);
    expect(clip.edges).toEqual([{ source: "ai-processor", target: "check", sourceHandle: "out" }]);
    const result = paste(graph, clip, TYPES);
    expect(result.ids).toEqual(["ai-processor-2", "check-2"]);
    const copy = result.nodes.find((n) => n.id === "ai-processor-2") as StepNode;
    const original = graph.nodes.find((n) => n.id === "ai-processor") as StepNode;
    expect(copy.position).toEqual({ x: original.position.x + 40, y: original.position.y + 40 });
    expect(copy.data.spec).toMatchObject({ id: "ai-processor-2", config: { prompt: "hi" } });
    expect(copy.data.spec.config).not.toBe(original.data.spec.config);
    expect(result.edges.at(-1)).toMatchObject({ source: "ai-processor-2", target: "check-2" });
    expect(result.nodes.filter((n) => n.selected).map((n) => n.id)).toEqual(["ai-processor-2", "check-2"]);
  });
});

describe("renameNode", () => {
  it("renames the node and rewires its edges", () => {
    const next = renameNode(seed(), "check", "gate");
    expect(next.nodes.find((n) => n.id === "gate")?.data.spec.id).toBe("gate");
    expect(next.edges.map((e) => e.id)).toEqual(["start->ai-processor", "ai-processor->gate", "gate->end#true"]);
  });

  it("refuses a taken or empty id", () => {
    const graph = seed();
    expect(renameNode(graph, "check", "end")).toBe(graph);
    expect(renameNode(graph, "check", " ")).toBe(graph);
  });
});

describe("updateSpec", () => {
  it("adds the error handle for on_error branch and drops its edges when it goes", () => {
    let graph = seed();
    const spec = graph.nodes[1]?.data.spec;
    if (!spec) throw new Error("no node");
    graph = updateSpec(graph, "ai-processor", { ...spec, on_error: "branch" }, TYPES);
    expect(graph.nodes[1]?.data.handles).toEqual(["out", "error"]);
    graph = connect(graph, { source: "ai-processor", target: "end", sourceHandle: "error", targetHandle: null });
    expect(graph.edges.some((e) => e.sourceHandle === "error")).toBe(true);
    graph = updateSpec(graph, "ai-processor", { ...spec, on_error: "fail" }, TYPES);
    expect(graph.nodes[1]?.data.handles).toEqual(["out"]);
    expect(graph.edges.some((e) => e.sourceHandle === "error")).toBe(false);
    expect(graph.edges).toHaveLength(3);
  });

  it("keeps a plain edge out of a node with branches when its settings change", () => {
    let graph = toFlow(
      {
        name: "plain",
        status: "active",
        nodes: [
          { id: "check", type: "condition", on_error: "fail" },
          { id: "end", type: "end", on_error: "fail" },
        ],
        edges: [{ from: "check", to: "end" }],
      },
      TYPES,
    );
    const spec = graph.nodes[0]?.data.spec;
    if (!spec) throw new Error("no node");
    graph = updateSpec(graph, "check", { ...spec, on_error: "branch" }, TYPES);
    expect(graph.nodes[0]?.data.handles).toEqual(["true", "false", "out", "error"]);
    expect(graph.edges).toHaveLength(1);
  });

  it("keeps other nodes as they were and renames when the id changes", () => {
    const graph = seed();
    const spec = graph.nodes[3]?.data.spec;
    if (!spec) throw new Error("no node");
    const next = updateSpec(graph, "end", { ...spec, id: "done", name: "Done" }, TYPES);
    expect(next.nodes[0]).toBe(graph.nodes[0]);
    expect(next.nodes[3]?.data.spec).toMatchObject({ id: "done", name: "Done" });
    expect(next.edges.at(-1)?.target).toBe("done");
  });
});
