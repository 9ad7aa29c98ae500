import { describe, expect, it } from "vitest";
import type { WorkflowDefinition } from "../canvas/definition";
import { createEditorStore, currentDefinition } from "./store";

const DEFINITION: WorkflowDefinition = {
  name: "w",
  status: "active",
  variables: [],
  metadata: {},
  nodes: [
    { id: "start", type: "start", on_error: "fail", position: { x: 0, y: 0 } },
    { id: "end", type: "end", on_error: "fail", position: { x: 300, y: 0 } },
  ],
  edges: [{ from: "start", to: "end" }],
};

function loaded() {
  const store = createEditorStore();
  store.getState().load(DEFINITION, {}, { workflowId: "w1", version: 1 });
  return store;
}

const past = (store: ReturnType<typeof createEditorStore>) => store.temporal.getState().pastStates.length;

describe("editor store", () => {
  it("starts clean with no history", () => {
    const store = loaded();
    expect(store.getState().dirty).toBe(false);
    expect(past(store)).toBe(0);
  });

  it("records edits, undoes and redoes them, and tracks dirty against the saved state", () => {
    const store = loaded();
    store.getState().addNode("end", { x: 0, y: 200 });
    expect(store.getState().nodes.map((n) => n.id)).toEqual(["start", "end", "end-2"]);
    expect(store.getState().dirty).toBe(true);
    store.getState().undo();
    expect(store.getState().nodes.map((n) => n.id)).toEqual(["start", "end"]);
    expect(store.getState().dirty).toBe(false);
    store.getState().redo();
    expect(store.getState().nodes).toHaveLength(3);
  });

  it("does not record selection changes", () => {
    const store = loaded();
    store.getState().selectNode("end");
    store.getState().onNodesChange([{ type: "select", id: "start", selected: true }]);
    expect(store.getState().selection.nodes).toEqual(["start", "end"]);
    expect(past(store)).toBe(0);
  });

  it("makes a drag one undo step", () => {
    const store = loaded();
    store.getState().beginDrag();
    for (const x of [10, 20, 30]) {
      store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 300 + x, y: 0 }, dragging: true }]);
    }
    store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 340, y: 0 }, dragging: false }]);
    store.getState().endDrag();
    expect(past(store)).toBe(1);
    expect(store.getState().dirty).toBe(true);
    store.getState().undo();
    expect(store.getState().nodes[1]?.position).toEqual({ x: 300, y: 0 });
  });

  it("ends a drag React Flow aborts without onNodeDragStop (history and dirty keep working)", () => {
    const store = loaded();
    store.getState().beginDrag();
    store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 320, y: 0 }, dragging: true }]);
    // An aborted drag (a second finger, the dragged node deleted) settles the positions
    // with dragging: false and never calls onNodeDragStop.
    store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 320, y: 0 }, dragging: false }]);
    expect(past(store)).toBe(1);
    expect(store.getState().dirty).toBe(true);
    store.getState().undo();
    expect(store.getState().nodes[1]?.position).toEqual({ x: 300, y: 0 });
    expect(store.getState().dirty).toBe(false);
    store.getState().addNode("end", { x: 0, y: 200 });
    expect(past(store)).toBe(1);
    expect(store.getState().dirty).toBe(true);
    store.getState().endDrag(); // a late stop is harmless
    expect(past(store)).toBe(1);
  });

  it("records an edit made during a drag (Delete pressed mid-drag)", () => {
    const store = loaded();
    store.getState().selectNode("end");
    store.getState().beginDrag();
    store.getState().onNodesChange([{ type: "position", id: "end", position: { x: 320, y: 0 }, dragging: true }]);
    store.getState().deleteSelection();
    expect(store.getState().nodes.map((n) => n.id)).toEqual(["start"]);
    expect(store.getState().dirty).toBe(true);
    store.getState().undo();
    expect(store.getState().nodes.map((n) => n.id)).toEqual(["start", "end"]);
  });

  it("groups quick edits of one field", () => {
    const store = loaded();
    store.getState().setName("a");
    store.getState().setName("ab");
    store.getState().setName("abc");
    expect(past(store)).toBe(1);
    store.getState().undo();
    expect(store.getState().base.name).toBe("w");
  });

  it("clears dirty on save and pins issues without a history step", () => {
    const store = loaded();
    store.getState().setName("renamed");
    const sent = currentDefinition(store.getState());
    store.getState().markSaved(sent, "w1", 2);
    expect(store.getState()).toMatchObject({ dirty: false, version: 2 });
    const steps = past(store);
    store.getState().setIssues([{ node_id: null, field: "nodes[1].config", message: "bad" }]);
    expect(store.getState().nodes[1]?.data.overlay?.issues).toEqual(["config: bad"]);
    expect(past(store)).toBe(steps);
  });

  it("copies and pastes the selection", () => {
    const store = loaded();
    store.getState().selectNode("end");
    expect(store.getState().copySelection()).toBe(true);
    expect(store.getState().paste()).toEqual(["end-2"]);
    expect(store.getState().selection.nodes).toEqual(["end-2"]);
    store.getState().deleteSelection();
    expect(store.getState().nodes.map((n) => n.id)).toEqual(["start", "end"]);
  });

  it("strips server fields from the base and round-trips positions", () => {
    const store = createEditorStore();
    store.getState().load({ ...DEFINITION, id: "w1", _id: "w1", version: 3 }, {});
    const definition = currentDefinition(store.getState());
    expect(definition.id).toBeUndefined();
    expect(definition.nodes?.[1]?.position).toEqual({ x: 300, y: 0 });
  });

  it("keeps the workflow's triggers and error workflow when a generated draft replaces the canvas", () => {
    const store = createEditorStore();
    const triggers = [{ type: "schedule", every_seconds: 60 }];
    store.getState().load({ ...DEFINITION, status: "paused", triggers, error_workflow_id: "w-err" }, {}, { workflowId: "w1", version: 1 });
    store.getState().loadDraft({ name: "draft", status: "active", nodes: DEFINITION.nodes, edges: [] });
    const definition = currentDefinition(store.getState());
    expect(definition.status).toBe("paused");
    expect(definition.triggers).toEqual(triggers);
    expect(definition.error_workflow_id).toBe("w-err");
    // A draft that brings its own triggers wins.
    store.getState().loadDraft({ name: "draft", status: "active", nodes: [], edges: [], triggers: [] });
    expect(currentDefinition(store.getState()).triggers).toEqual([]);
  });

  it("edits triggers and the error workflow as undoable content", () => {
    const store = loaded();
    store.getState().setTriggers([{ type: "schedule", every_seconds: 5 }], "trigger:0");
    store.getState().setTriggers([{ type: "schedule", every_seconds: 50 }], "trigger:0");
    expect(past(store)).toBe(1);
    expect(currentDefinition(store.getState()).triggers).toEqual([{ type: "schedule", every_seconds: 50 }]);
    store.getState().setErrorWorkflow("w-err");
    expect(currentDefinition(store.getState()).error_workflow_id).toBe("w-err");
    store.getState().setErrorWorkflow(null);
    expect(currentDefinition(store.getState())).not.toHaveProperty("error_workflow_id");
    store.getState().undo();
    store.getState().undo();
    store.getState().undo();
    expect(currentDefinition(store.getState()).triggers).toBeUndefined();
    expect(store.getState().dirty).toBe(false);
  });

  it("takes a pause from the server without touching unsaved edits, and no undo unpauses", () => {
    const store = loaded();
    store.getState().setName("renamed");
    store.getState().applyServerStatus("paused", 2);
    expect(store.getState().version).toBe(2);
    expect(store.getState().dirty).toBe(true);
    expect(currentDefinition(store.getState())).toMatchObject({ name: "renamed", status: "paused" });
    store.getState().undo();
    expect(currentDefinition(store.getState())).toMatchObject({ name: "w", status: "paused" });
    // Back at the saved content: the pause is saved too, so nothing is unsaved.
    expect(store.getState().dirty).toBe(false);
    store.getState().redo();
    expect(currentDefinition(store.getState())).toMatchObject({ name: "renamed", status: "paused" });
  });

  it("asks for the workflow settings: nodes deselected, each request counted", () => {
    const store = loaded();
    store.getState().selectNode("end");
    store.getState().showSettings(1);
    expect(store.getState().selection.nodes).toEqual([]);
    expect(store.getState().settingsRequest).toEqual({ trigger: 1, seq: 1 });
    store.getState().showSettings();
    expect(store.getState().settingsRequest).toEqual({ trigger: null, seq: 2 });
    expect(past(store)).toBe(0);
  });
});
