// @vitest-environment jsdom
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { type FakeHandler, fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { EditorPage } from "./EditorPage";

// jsdom lacks what React Flow measures with (ResizeObserver: testing/render.tsx).
(globalThis as { DOMMatrixReadOnly?: unknown }).DOMMatrixReadOnly ??= class {
  m22 = 1;
  constructor(transform?: string) {
    const scale = transform?.match(/scale\(([\d.]+)\)/)?.[1];
    this.m22 = scale ? Number(scale) : 1;
  }
};

const NODE_TYPES = ["start", "ai-processor", "condition", "end"].map((type) => ({
  type,
  description: `the ${type} node`,
  config_schema: {},
  branches: type === "condition" ? ["false", "true"] : [],
  expression_fields: [],
  side_effects: false,
}));

const WORKFLOW = {
  id: "w1",
  _id: "w1",
  name: "Seed",
  version: 3,
  status: "active",
  variables: ["user_name"],
  metadata: {},
  created_at: "2026-01-01T00:00:00+00:00",
  updated_at: "2026-01-01T00:00:00+00:00",
  nodes: [
    { id: "start", type: "start", config: {}, on_error: "fail", position: { x: 0, y: 0 } },
    { id: "ai-processor", type: "ai-processor", config: {}, on_error: "fail", position: { x: 250, y: 0 } },
  ],
  edges: [{ from: "start", to: "ai-processor" }],
};

const PROMPT_MISSING = { node_id: "ai-processor", field: "config.prompt", message: "Field required" };

function api(routes: Record<string, FakeHandler>): FakeHandler {
  return (request) => {
    const path = new URL(request.url).pathname;
    const route = routes[`${request.method} ${path}`];
    if (route) return route(request);
    if (path === "/node-types") return json(NODE_TYPES);
    if (path === "/workflows/validate") return json({ valid: false, issues: [PROMPT_MISSING] });
    return undefined;
  };
}

const renderEditor = (path: string) =>
  renderRoutes(
    [
      { path: "/workflows/new", element: <EditorPage /> },
      { path: "/workflows/:id", element: <EditorPage workflowId="w1" /> },
      { path: "/runs/:id", element: <p>run page</p> },
      { path: "/", element: <p>list page</p> },
    ],
    path,
  );

describe("EditorPage", () => {
  it("lists every node type in the palette and pins validation problems", async () => {
    fakeApi.handler = api({ "GET /workflows/w1": () => json(WORKFLOW) });
    renderEditor("/workflows/w1");
    const palette = await screen.findByRole("region", { name: "Node palette" });
    const add = within(palette).getByRole("button", { name: "Add condition node" });
    expect(add.getAttribute("title")).toBe("the condition node");
    expect(add.getAttribute("draggable")).toBe("true");
    expect((screen.getByLabelText("Workflow name") as HTMLInputElement).value).toBe("Seed");
    const problems = screen.getByRole("region", { name: "Problems" });
    await within(problems).findByText("Field required");
    expect(await screen.findByText("prompt: Field required")).toBeTruthy();
    const body = (await requestsTo("POST", "/workflows/validate")[0]?.json()) as { nodes: { id: string }[] };
    expect(body.nodes.map((n) => n.id)).toEqual(["start", "ai-processor"]);
  });

  it("saves a new version with the added node, and shows a refusal's problems", async () => {
    let refuse = true;
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "PUT /workflows/w1": async (request) => {
        if (refuse) return json({ message: "workflow is invalid", detail: [PROMPT_MISSING] }, 422);
        const definition = (await request.json()) as object;
        return json({ ...WORKFLOW, ...definition, version: 4 });
      },
    });
    renderEditor("/workflows/w1");
    fireEvent.click(await screen.findByRole("button", { name: "Add end node" }));
    expect(await screen.findByText(/unsaved changes/)).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/Not saved: 1 problem/);
    refuse = false;
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Version 4");
    expect(screen.queryByText(/unsaved changes/)).toBeNull();
    const body = (await requestsTo("PUT", "/workflows/w1")[1]?.json()) as { nodes: { id: string }[]; id?: string; version?: number };
    expect(body.nodes.map((n) => n.id)).toEqual(["start", "ai-processor", "end"]);
    expect(body.id).toBeUndefined();
    expect(body.version).toBeUndefined();
  });

  it("keeps triggers, the error workflow and fields it does not know through load, edit and save", async () => {
    const triggers = [
      { type: "schedule", cron: "*/5 * * * *", timezone: "Europe/Berlin", inputs: { n: 1 } },
      { type: "webhook", path: "new-signup", methods: ["POST"], respond: "sync", auth: { type: "hmac", credential: "gh" } },
    ];
    const stored = { ...WORKFLOW, triggers, error_workflow_id: "w-errors", x_owner: { team: "ops" } };
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(stored),
      "PUT /workflows/w1": async (request) => json({ ...stored, ...((await request.json()) as object), version: 4 }),
    });
    renderEditor("/workflows/w1");
    fireEvent.change(await screen.findByLabelText("Workflow name"), { target: { value: "Renamed" } });
    fireEvent.click(await screen.findByRole("button", { name: "Add end node" }));
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Version 4");
    const body = (await requestsTo("PUT", "/workflows/w1")[0]?.json()) as Record<string, unknown>;
    expect(body.name).toBe("Renamed");
    expect(body.triggers).toEqual(triggers);
    expect(body.error_workflow_id).toBe("w-errors");
    expect(body.x_owner).toEqual({ team: "ops" });
    await waitFor(() => expect(requestsTo("POST", "/workflows/validate").length).toBeGreaterThan(0));
    const validated = (await requestsTo("POST", "/workflows/validate")[0]?.json()) as Record<string, unknown>;
    expect(validated.triggers).toEqual(triggers);
  });

  it("says so when the workflow does not exist", async () => {
    fakeApi.handler = api({ "GET /workflows/w1": () => json({ detail: "workflow not found" }, 404) });
    renderEditor("/workflows/w1");
    expect(await screen.findByRole("heading", { name: "Workflow not found" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Back to workflows" }).getAttribute("href")).toBe("/");
  });

  it("creates a workflow from a generated draft", async () => {
    const draft = { ...WORKFLOW, name: "Drafted", id: undefined, version: undefined };
    fakeApi.handler = api({
      "POST /ai/workflows/generate": () => json({ workflow: draft, rounds: 1, saved: false, model: "m", cached: false }),
      "POST /workflows/": async (request) => json({ ...WORKFLOW, ...((await request.json()) as object), id: "w9", version: 1 }, 201),
      "GET /workflows/w9": () => json({ ...WORKFLOW, id: "w9" }),
    });
    const router = renderEditor("/workflows/new");
    fireEvent.click(await screen.findByRole("button", { name: "Generate" }));
    fireEvent.change(screen.getByLabelText("Describe the workflow"), { target: { value: "greet people" } });
    fireEvent.click(screen.getByRole("button", { name: "Generate draft" }));
    await waitFor(() => expect((screen.getByLabelText("Workflow name") as HTMLInputElement).value).toBe("Drafted"));
    expect(screen.getByText(/unsaved changes/)).toBeTruthy();
    expect(await requestsTo("POST", "/ai/workflows/generate")[0]?.json()).toEqual({ prompt: "greet people", save: false });
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/workflows/w9"));
  });

  it("drops a draft that arrives after the generate dialog was cancelled", async () => {
    let answer: (response: Response) => void = () => {};
    const draft = { ...WORKFLOW, name: "Drafted", id: undefined, version: undefined };
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "POST /ai/workflows/generate": () => new Promise<Response>((resolve) => (answer = resolve)),
    });
    renderEditor("/workflows/w1");
    fireEvent.click(await screen.findByRole("button", { name: "Generate" }));
    fireEvent.change(screen.getByLabelText("Describe the workflow"), { target: { value: "greet people" } });
    fireEvent.click(screen.getByRole("button", { name: "Generate draft" }));
    await screen.findByText(/Generating/);
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(screen.queryByLabelText("Describe the workflow")).toBeNull();
    answer(json({ workflow: draft, rounds: 1, saved: false, model: "m", cached: false }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((screen.getByLabelText("Workflow name") as HTMLInputElement).value).toBe("Seed");
    expect(screen.queryByText(/Draft loaded/)).toBeNull();
  });

  it("asks before leaving with unsaved changes", async () => {
    fakeApi.handler = api({ "GET /workflows/w1": () => json(WORKFLOW) });
    const router = renderEditor("/workflows/w1");
    fireEvent.change(await screen.findByLabelText("Workflow name"), { target: { value: "Renamed" } });
    void router.navigate("/");
    const dialog = await screen.findByRole("dialog", { name: "Discard changes?" });
    fireEvent.click(within(dialog).getByRole("button", { name: "Stay" }));
    expect(router.state.location.pathname).toBe("/workflows/w1");
    void router.navigate("/");
    fireEvent.click(within(await screen.findByRole("dialog", { name: "Discard changes?" })).getByRole("button", { name: "Discard" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/"));
  });

  it("starts a run with the inputs typed", async () => {
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "POST /workflows/w1/execute": () => json({ execution_id: "e1", workflow_id: "w1", status: "queued", message: "", started_at: "2026-01-01T00:00:00Z" }, 202),
    });
    const router = renderEditor("/workflows/w1");
    fireEvent.click(await screen.findByRole("button", { name: "Run" }));
    const inputs = screen.getByLabelText("Inputs (JSON)") as HTMLTextAreaElement;
    expect(JSON.parse(inputs.value)).toEqual({ user_name: "" });
    fireEvent.change(inputs, { target: { value: '{"user_name": "Ada"}' } });
    fireEvent.click(screen.getByRole("button", { name: "Start run" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs/e1"));
    expect(await requestsTo("POST", "/workflows/w1/execute")[0]?.json()).toEqual({ inputs: { user_name: "Ada" }, async_execution: true });
    expect(requestsTo("PUT", "/workflows/w1")).toHaveLength(0);
  });
});
