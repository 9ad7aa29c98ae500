import { describe, expect, it } from "vitest";
import { type WorkflowDefinition, toDefinition, toFlow } from "../canvas/definition";
import { absolutePositions, loopAt, reparent } from "./loops";
import { createEditorStore } from "./store";
import { addNode, connectionProblem, copyNodes, deleteElements, paste, renameNode } from "./transforms";

const definition: WorkflowDefinition = {
  name: "w",
  status: "active",
  nodes: [
    { id: "start", type: "start", on_error: "fail", position: { x: 0, y: 0 } },
    { id: "loop1", type: "loop", on_error: "fail", position: { x: 300, y: 0 }, size: { width: 400, height: 200 } },
    { id: "body", type: "transformer", on_error: "fail", parent: "loop1", position: { x: 20, y: 60 } },
    { id: "end", type: "end", on_error: "fail", position: { x: 900, y: 0 } },
  ],
  edges: [
    { from: "start", to: "loop1" },
    { from: "loop1", to: "end" },
  ],
};

const graph = () => toFlow(definition);

describe("loop geometry", () => {
  it("knows where body nodes sit on the canvas and which loop holds a point", () => {
    const { nodes } = graph();
    expect(absolutePositions(nodes).get("body")).toEqual({ x: 320, y: 60 });
    expect(loopAt(nodes, { x: 350, y: 100 })).toBe("loop1");
    expect(loopAt(nodes, { x: 100, y: 100 })).toBeNull();
  });
});

describe("reparent", () => {
  it("puts a node dropped inside a loop into its body, keeping its spot", () => {
    const { nodes, edges } = graph();
    const moved = nodes.map((n) => (n.id === "end" ? { ...n, position: { x: 450, y: 80 } } : n));
    const next = reparent({ nodes: moved, edges }, ["end"]);
    const end = next.nodes.find((n) => n.id === "end");
    expect(end).toMatchObject({ parentId: "loop1", position: { x: 150, y: 80 } });
    expect(end?.data.spec.parent).toBe("loop1");
    // The edge loop1 -> end would cross the boundary now: dropped.
    expect(next.edges.map((e) => e.id)).toEqual(["start->loop1"]);
    // Saved: parent and the relative position.
    expect(toDefinition(definition, next.nodes, next.edges).nodes?.find((n) => n.id === "end")).toMatchObject({
      parent: "loop1",
      position: { x: 150, y: 80 },
    });
  });

  it("takes a node dragged out of its loop to the top level", () => {
    const { nodes, edges } = graph();
    const moved = nodes.map((n) => (n.id === "body" ? { ...n, position: { x: -250, y: 300 } } : n));
    const next = reparent({ nodes: moved, edges }, ["body"]);
    const body = next.nodes.find((n) => n.id === "body");
    expect(body?.parentId).toBeUndefined();
    expect(body?.position).toEqual({ x: 50, y: 300 });
    expect("parent" in (body?.data.spec ?? {})).toBe(false);
  });

  it("leaves the graph alone when nothing changed scope", () => {
    const g = graph();
    expect(reparent(g, ["body", "start"])).toBe(g);
  });
});

describe("transforms with loops", () => {
  it("adds a node into a loop's body", () => {
    const result = addNode(graph(), "transformer", { x: 10, y: 10 }, {}, "loop1");
    const added = result.nodes.find((n) => n.id === result.id);
    expect(added).toMatchObject({ parentId: "loop1", data: { spec: { parent: "loop1" } } });
  });

  it("refuses edges across a loop's boundary", () => {
    const g = graph();
    expect(connectionProblem(g, { source: "start", target: "body", sourceHandle: "out", targetHandle: null })).toMatch(/boundary/);
    expect(connectionProblem(g, { source: "start", target: "loop1", sourceHandle: "out", targetHandle: null })).toMatch(/already/);
  });

  it("deletes a loop with its body and renames a loop with its body following", () => {
    expect(deleteElements(graph(), ["loop1"]).nodes.map((n) => n.id)).toEqual(["start", "end"]);
    const renamed = renameNode(graph(), "loop1", "each");
    expect(renamed.nodes.find((n) => n.id === "body")).toMatchObject({ parentId: "each", data: { spec: { parent: "each" } } });
  });

  it("copies a loop with its body and pastes both, the body inside the copy", () => {
    const g = graph();
    const clip = copyNodes(g, ["loop1"]);
    expect(clip.nodes.map((n) => n.spec.id)).toEqual(["loop1", "body"]);
    const pasted = paste(g, clip, {});
    const copy = pasted.nodes.find((n) => n.id === "body-2");
    expect(copy).toMatchObject({ parentId: "loop1-2", position: { x: 20, y: 60 } });
  });
});

describe("editor store with loops", () => {
  it("a drag into a loop is one undo step, and the saved definition says so", () => {
    const store = createEditorStore();
    store.getState().load(definition, {}, { workflowId: "w", version: 1 });
    store.getState().beginDrag();
    store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 450, y: 80 }, dragging: true }]);
    store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 450, y: 80 }, dragging: false }]);
    store.getState().endDrag();
    expect(store.getState().nodes.find((n) => n.id === "end")?.parentId).toBe("loop1");
    expect(store.getState().dirty).toBe(true);
    expect(store.temporal.getState().pastStates).toHaveLength(1);
    store.getState().undo();
    expect(store.getState().nodes.find((n) => n.id === "end")?.parentId).toBeUndefined();
    expect(store.getState().dirty).toBe(false);
  });

  it("a resize of a loop is one undo step and its size is saved", () => {
    const store = createEditorStore();
    store.getState().load(definition, {}, { workflowId: "w", version: 1 });
    store.getState().beginDrag();
    for (const width of [420, 460, 480]) {
      store.getState().onNodesChange([
        { type: "dimensions", id: "loop1", resizing: true, setAttributes: true, dimensions: { width, height: 220 } },
      ]);
    }
    store.getState().endDrag();
    expect(store.temporal.getState().pastStates).toHaveLength(1);
    expect(store.getState().dirty).toBe(true);
    const state = store.getState();
    const saved = toDefinition(state.base, state.nodes, state.edges);
    expect(saved.nodes?.find((n) => n.id === "loop1")?.size).toEqual({ width: 480, height: 220 });
  });
});
