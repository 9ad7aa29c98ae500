import { describe, expect, it } from "vitest";
import {
  CARD_SIZE,
  DEFAULT_HANDLE,
  applyCanvasChanges,
  ERROR_HANDLE,
  VIRTUALISE_ABOVE,
  type WorkflowDefinition,
  edgeEnds,
  layout,
  outputHandles,
  toDefinition,
  toFlow,
  withDeclaredHandles,
} from "./definition";

const seed: WorkflowDefinition = {
  name: "Test Workflow",
  nodes: [
    { id: "start", type: "start", config: {}, position: { x: 0, y: 0 }, on_error: "fail" },
    { id: "check", type: "condition", config: { condition: "x > 1" }, on_error: "branch" },
    { id: "end", type: "end", config: {}, position: { x: 400, y: 10 }, on_error: "fail" },
  ],
  edges: [
    { from: "start", to: "check" },
    { from: "check", to: "end", branch: "true" },
  ],
  variables: [],
  status: "active",
  metadata: { author: "Me" },
};
const types = { condition: { branches: ["false", "true"] } };

describe("outputHandles", () => {
  it("gives one default handle to a node without branches", () => {
    expect(outputHandles({ id: "a", type: "start", on_error: "fail" })).toEqual([DEFAULT_HANDLE]);
  });
  it("puts true above false and adds error for on_error branch", () => {
    expect(outputHandles({ id: "c", type: "condition", on_error: "branch" }, types.condition)).toEqual([
      "true",
      "false",
      ERROR_HANDLE,
    ]);
  });
});

describe("plain edges out of a node with branches", () => {
  it("get the plain handle, so the canvas draws them (a wait node's edge without a branch)", () => {
    const waits = { wait: { branches: ["resumed", "timeout"] } };
    const definition: WorkflowDefinition = {
      name: "w",
      status: "active",
      nodes: [
        { id: "ask", type: "wait", on_error: "fail" },
        { id: "end", type: "end", on_error: "fail" },
        { id: "late", type: "end", on_error: "fail" },
      ],
      edges: [
        { from: "ask", to: "end" },
        { from: "ask", to: "late", branch: "timeout" },
      ],
    };
    const { nodes, edges } = toFlow(definition, waits);
    expect(nodes[0]?.data.handles).toEqual(["resumed", "timeout", DEFAULT_HANDLE]);
    expect(edges.map((e) => e.sourceHandle)).toEqual([DEFAULT_HANDLE, "timeout"]);
    expect(toDefinition(definition, nodes, edges).edges).toEqual(definition.edges);
    // Without such an edge, only the branches.
    expect(toFlow({ ...definition, edges: [] }, waits).nodes[0]?.data.handles).toEqual(["resumed", "timeout"]);
  });
});

describe("edgeEnds", () => {
  it("reads React Flow's spelling and boolean branches", () => {
    expect(edgeEnds({ source: "a", target: "b", sourceHandle: true } as never)).toEqual({
      source: "a",
      target: "b",
      branch: "true",
    });
  });
});

describe("layout", () => {
  it("keeps saved positions and places the others by depth", () => {
    const positions = layout(seed);
    expect(positions.start).toEqual({ x: 0, y: 0 });
    expect(positions.end).toEqual({ x: 400, y: 10 });
    expect(positions.check?.x).toBeGreaterThan(0);
  });
  it("survives a cycle", () => {
    const cyclic: WorkflowDefinition = {
      name: "c",
      status: "active",
      nodes: [
        { id: "a", type: "start", on_error: "fail" },
        { id: "b", type: "end", on_error: "fail" },
      ],
      edges: [
        { from: "a", to: "b" },
        { from: "b", to: "a" },
      ],
    };
    expect(Object.keys(layout(cyclic))).toEqual(["a", "b"]);
  });
});

describe("toFlow / toDefinition", () => {
  it("round-trips nodes, edges, branches, positions and the rest of the definition", () => {
    const { nodes, edges } = toFlow(seed, types);
    expect(nodes.map((n) => n.data.handles)).toEqual([[DEFAULT_HANDLE], ["true", "false", "error"], [DEFAULT_HANDLE]]);
    expect(edges[1]).toMatchObject({ source: "check", target: "end", sourceHandle: "true", label: "true" });
    const moved = nodes.map((n) => (n.id === "end" ? { ...n, position: { x: 512.4, y: 20.6 } } : n));
    const back = toDefinition(seed, moved, edges);
    expect(back.name).toBe("Test Workflow");
    expect(back.metadata).toEqual({ author: "Me" });
    expect(back.edges).toEqual([
      { from: "start", to: "check" },
      { from: "check", to: "end", branch: "true" },
    ]);
    expect(back.nodes?.[2]?.position).toEqual({ x: 512, y: 21 });
    expect(back.nodes?.[1]?.config).toEqual({ condition: "x > 1" });
  });
});

describe("withDeclaredHandles", () => {
  const { nodes } = toFlow(seed, types);
  const check = withDeclaredHandles(nodes[1]!);

  it("gives a card a size and handles where NodeCard draws them", () => {
    expect(check.initialWidth).toBe(CARD_SIZE.width);
    expect(check.initialHeight).toBe(CARD_SIZE.height);
    const handles = check.handles ?? [];
    const target = handles.filter((h) => h.type === "target");
    const sources = handles.filter((h) => h.type === "source");
    expect(target).toHaveLength(1);
    expect(target[0]?.x).toBeLessThan(0);
    // One per output (false, true, error, and the plain one its edge needs), spread down the right side.
    expect(sources.map((h) => h.id)).toEqual(nodes[1]!.data.handles);
    const ys = sources.map((h) => h.y);
    expect([...ys].sort((a, b) => a - b)).toEqual(ys);
    expect(Math.max(...ys)).toBeLessThan(CARD_SIZE.height);
    expect(sources.every((h) => h.x > CARD_SIZE.width / 2)).toBe(true);
  });

  it("leaves loops and nodes that have handles as they are", () => {
    expect(withDeclaredHandles(check)).toBe(check);
    const loop = toFlow({ name: "l", nodes: [{ id: "each", type: "loop" }], edges: [] } as unknown as WorkflowDefinition).nodes[0]!;
    expect(withDeclaredHandles(loop)).toBe(loop);
  });
});

describe("applyCanvasChanges", () => {
  const declared = toFlow(seed, types).nodes.map(withDeclaredHandles);

  it("drops a card's declared handles when React Flow measures it, and only then", () => {
    const moved = applyCanvasChanges([{ type: "position", id: "check", position: { x: 5, y: 5 } }], declared);
    expect(moved[1]?.handles).toBeDefined();
    const measured = applyCanvasChanges(
      [{ type: "dimensions", id: "check", dimensions: { width: 240, height: 120 } }],
      moved,
    );
    expect(measured[1]?.handles).toBeUndefined();
    expect(measured[1]?.measured).toEqual({ width: 240, height: 120 });
    expect(measured[1]?.position).toEqual({ x: 5, y: 5 });
    // The others are untouched (the same objects).
    expect(measured[0]).toBe(moved[0]);
    expect(measured[2]).toBe(moved[2]);
  });
});

describe("toFlow on a large graph", () => {
  const chainOf = (length: number): WorkflowDefinition => ({
    name: "chain",
    nodes: Array.from({ length }, (_, i) => ({ id: `n${i}`, type: "transformer" })),
    edges: Array.from({ length: length - 1 }, (_, i) => ({ from: `n${i}`, to: `n${i + 1}` })),
  }) as unknown as WorkflowDefinition;

  it("declares sizes and handles past VIRTUALISE_ABOVE nodes, not below", () => {
    expect(toFlow(chainOf(VIRTUALISE_ABOVE)).nodes.every((n) => n.handles === undefined)).toBe(true);
    const large = toFlow(chainOf(VIRTUALISE_ABOVE + 1)).nodes;
    expect(large.every((n) => n.handles !== undefined && n.initialWidth === CARD_SIZE.width)).toBe(true);
  });
});
