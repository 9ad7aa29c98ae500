import { describe, expect, it } from "vitest";
import { LOOP, LOOP_SIZE, type WorkflowDefinition, parentsFirst, toDefinition, toFlow } from "./definition";

const withLoop: WorkflowDefinition = {
  name: "loop",
  status: "active",
  nodes: [
    // A body node listed before its loop: React Flow needs the loop first.
    { id: "summarize", type: "ai-processor", on_error: "fail", parent: "loop1", position: { x: 30, y: 60 } },
    { id: "start", type: "start", on_error: "fail", position: { x: 0, y: 0 } },
    { id: "loop1", type: "loop", on_error: "fail", config: { items: "{{ input.rows }}" }, position: { x: 300, y: 0 }, size: { width: 500, height: 300 } },
    { id: "clean", type: "transformer", on_error: "fail", parent: "loop1", position: { x: 260, y: 60 } },
    { id: "end", type: "end", on_error: "fail", position: { x: 900, y: 0 } },
  ],
  edges: [
    { from: "start", to: "loop1" },
    { from: "summarize", to: "clean" },
    { from: "loop1", to: "end" },
  ],
};

describe("loop groups in toFlow / toDefinition", () => {
  it("draws a loop as a sized group with its body nodes as children, parents first", () => {
    const { nodes } = toFlow(withLoop);
    expect(nodes.map((n) => n.id)).toEqual(["start", "loop1", "clean", "end", "summarize"]);
    const loop = nodes.find((n) => n.id === "loop1");
    expect(loop).toMatchObject({ type: LOOP, width: 500, height: 300 });
    expect(nodes.find((n) => n.id === "summarize")).toMatchObject({ parentId: "loop1", position: { x: 30, y: 60 } });
    expect(nodes.find((n) => n.id === "start")?.parentId).toBeUndefined();
  });

  it("round-trips parent, relative positions and the loop's size", () => {
    const { nodes, edges } = toFlow(withLoop);
    const back = toDefinition(withLoop, nodes, edges);
    const byId = Object.fromEntries((back.nodes ?? []).map((n) => [n.id, n]));
    expect(byId.summarize).toMatchObject({ parent: "loop1", position: { x: 30, y: 60 } });
    expect(byId.clean).toMatchObject({ parent: "loop1", position: { x: 260, y: 60 } });
    expect(byId.loop1).toMatchObject({ size: { width: 500, height: 300 }, config: { items: "{{ input.rows }}" } });
    expect("parent" in (byId.start ?? {})).toBe(false);
    expect(back.edges).toEqual(withLoop.edges);
    // Loaded again, the same definition (what the dirty flag compares).
    const again = toFlow(back);
    expect(toDefinition(withLoop, again.nodes, again.edges)).toEqual(back);
  });

  it("reads React Flow's parentId and gives a new loop the default size", () => {
    const definition: WorkflowDefinition = {
      name: "rf",
      status: "active",
      nodes: [
        { id: "l", type: "loop", on_error: "fail" },
        { id: "b", type: "transformer", on_error: "fail", parentId: "l" },
      ],
      edges: [],
    };
    const { nodes, edges } = toFlow(definition);
    expect(nodes[0]).toMatchObject({ width: LOOP_SIZE.width, height: LOOP_SIZE.height });
    expect(nodes[1]?.parentId).toBe("l");
    // Laid out inside the group, below its title.
    expect(nodes[1]?.position).toEqual({ x: 20, y: 50 });
    const body = toDefinition(definition, nodes, edges).nodes?.[1];
    expect(body?.parent).toBe("l");
    expect("parentId" in (body ?? {})).toBe(false);
  });

  it("parentsFirst keeps an ordered list as it is", () => {
    const list = [{ id: "a" }, { id: "b", parentId: "a" }];
    expect(parentsFirst(list)).toBe(list);
    expect(parentsFirst([{ id: "b", parentId: "a" }, { id: "a" }]).map((n) => n.id)).toEqual(["a", "b"]);
  });
});
