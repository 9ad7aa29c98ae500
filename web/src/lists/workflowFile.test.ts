import { describe, expect, it } from "vitest";
import type { Workflow } from "../api/client";
import { copyName, duplicateDefinition, exportFileName, parseWorkflowFile, problemLines, workflowDefinition } from "./workflowFile";

describe("parseWorkflowFile", () => {
  it("accepts an object with a name and nodes, dropping the server's identity fields", () => {
    const parsed = parseWorkflowFile(
      JSON.stringify({ id: "w1", _id: "w1", version: 4, name: "A", nodes: [], edges: [], extra: 1 }),
    );
    expect(parsed).toEqual({ ok: true, definition: { name: "A", nodes: [], edges: [], extra: 1 } });
  });

  it("says why a file is not a workflow", () => {
    const notJson = parseWorkflowFile("{oops");
    expect(notJson.ok === false && notJson.error).toMatch(/not JSON/);
    const list = parseWorkflowFile("[]");
    expect(list.ok === false && list.error).toMatch(/JSON object/);
    const noName = parseWorkflowFile('{"nodes": []}');
    expect(noName.ok === false && noName.error).toMatch(/no name/);
    const noNodes = parseWorkflowFile('{"name": "A"}');
    expect(noNodes.ok === false && noNodes.error).toMatch(/no nodes/);
  });
});

describe("workflowDefinition", () => {
  it("keeps triggers, the error workflow and fields it does not know (export loses nothing)", () => {
    const triggers = [{ type: "webhook", path: "p", auth: { type: "none" } }];
    const workflow = {
      id: "w1",
      _id: "w1",
      version: 2,
      created_at: "x",
      updated_at: "y",
      last_run: null,
      name: "A",
      status: "paused",
      nodes: [],
      edges: [],
      triggers,
      error_workflow_id: "w2",
      x_owner: "ops",
    } as unknown as Workflow;
    expect(workflowDefinition(workflow)).toEqual({
      name: "A",
      status: "paused",
      nodes: [],
      edges: [],
      triggers,
      error_workflow_id: "w2",
      x_owner: "ops",
    });
  });

  it("keeps what POST accepts and nothing the server assigns", () => {
    const workflow = {
      id: "w1",
      _id: "w1",
      version: 2,
      created_at: "x",
      updated_at: "y",
      name: "A",
      status: "active",
      nodes: [],
      edges: [],
      variables: [],
      metadata: { owner: "ada" },
    } as Workflow;
    expect(workflowDefinition(workflow)).toEqual({
      name: "A",
      status: "active",
      nodes: [],
      edges: [],
      variables: [],
      metadata: { owner: "ada" },
    });
  });
});

describe("names", () => {
  it("pauses a copy that has triggers and gives its webhooks paths of their own", () => {
    const plain = { id: "w1", name: "A", status: "active", nodes: [], edges: [] } as unknown as Workflow;
    expect(duplicateDefinition(plain)).toEqual({ name: "A (copy)", status: "active", nodes: [], edges: [] });
    const triggered = {
      ...plain,
      triggers: [
        { type: "schedule", every_seconds: 5 },
        { type: "webhook", path: "github/push", auth: { type: "none" } },
      ],
    } as unknown as Workflow;
    expect(duplicateDefinition(triggered)).toEqual({
      name: "A (copy)",
      status: "paused",
      nodes: [],
      edges: [],
      triggers: [
        { type: "schedule", every_seconds: 5 },
        { type: "webhook", path: "github/push-copy", auth: { type: "none" } },
      ],
    });
  });

  it("names copies and export files", () => {
    expect(copyName("A")).toBe("A (copy)");
    expect(exportFileName("a/b: c?")).toBe("a_b_ c_.json");
    expect(exportFileName("///")).toBe("_.json");
  });
});

describe("problemLines", () => {
  it("puts each 422 problem on a line with its node and field", () => {
    const body = {
      message: "workflow is invalid",
      detail: [
        { node_id: "n1", field: "config.url", message: "is required" },
        { node_id: null, field: "name", message: "too short" },
        { message: "a cycle" },
      ],
    };
    expect(problemLines(body, "x")).toEqual([
      "node n1, field config.url: is required",
      "field name: too short",
      "a cycle",
    ]);
  });

  it("uses a string detail, else the fallback", () => {
    expect(problemLines({ detail: "in use" }, "x")).toEqual(["in use"]);
    expect(problemLines(null, "fallback")).toEqual(["fallback"]);
  });
});
