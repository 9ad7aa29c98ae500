// @vitest-environment jsdom
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { type FakeHandler, fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { TRIGGER_TYPE_FIXTURE } from "../triggers/testing";
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
    if (path === "/trigger-types") return json(TRIGGER_TYPE_FIXTURE);
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

  it("adds a schedule from the Triggers button, edits it with the generated form and saves it", async () => {
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "PUT /workflows/w1": async (request) => json({ ...WORKFLOW, ...((await request.json()) as object), version: 4 }),
    });
    renderEditor("/workflows/w1");
    fireEvent.click(await screen.findByRole("button", { name: "Triggers" }));
    const settings = await screen.findByRole("region", { name: "Workflow settings" });
    await waitFor(() => expect(document.activeElement?.id).toBe("workflow-settings-title"));
    expect(settings.textContent).toContain("No triggers");
    fireEvent.click(await within(settings).findByRole("button", { name: "Add schedule" }));
    const cron = (await within(settings).findByLabelText(/^Cron expression/)) as HTMLInputElement;
    expect(cron.value).toBe("0 9 * * *");
    fireEvent.change(cron, { target: { value: "*/5 * * * *" } });
    expect(within(settings).getByRole("button", { name: /^Schedule cron \*\/5 \* \* \* \*/ }).getAttribute("aria-expanded")).toBe("true");
    expect(screen.getByRole("button", { name: "Triggers (1)" })).toBeTruthy();
    expect(within(settings).getByText("Save to see when it fires next.")).toBeTruthy();
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Version 4");
    const body = (await requestsTo("PUT", "/workflows/w1")[0]?.json()) as { triggers: unknown[] };
    expect(body.triggers).toEqual([{ type: "schedule", cron: "*/5 * * * *", timezone: Intl.DateTimeFormat().resolvedOptions().timeZone }]);
  });

  it("shows a saved schedule's next fire times, a webhook's URL to copy, and trigger problems where they belong", async () => {
    const triggers = [
      { type: "schedule", cron: "0 9 * * *", timezone: "UTC" },
      { type: "webhook", path: "new-signup", auth: { type: "none" } },
    ];
    const next = ["2026-12-03T09:00:00Z", "2026-12-04T09:00:00Z", "2026-12-05T09:00:00Z", "2026-12-06T09:00:00Z", "2026-12-07T09:00:00Z"];
    fakeApi.handler = api({
      "GET /workflows/w1": () => json({ ...WORKFLOW, triggers }),
      "GET /workflows/w1/schedule": () =>
        json([{ index: 0, key: "abc", spec: triggers[0], timezone: "UTC", paused: false, last_slot: null, next: next.map((utc) => ({ utc, local: utc })) }]),
      "POST /workflows/validate": () =>
        json({ valid: false, issues: [{ node_id: null, field: "triggers[1].path", message: "/hooks/new-signup is served by workflow w7 already" }] }),
    });
    const writes: string[] = [];
    Object.defineProperty(navigator, "clipboard", { value: { writeText: async (text: string) => void writes.push(text) }, configurable: true });
    renderEditor("/workflows/w1");
    const settings = await screen.findByRole("region", { name: "Workflow settings" });
    const times = await within(settings).findByRole("list", { name: "Fires next at:" });
    expect(within(times).getAllByRole("listitem")).toHaveLength(5);
    expect(times.querySelector("time")?.getAttribute("datetime")).toBe("2026-12-03T09:00:00Z");
    const url = within(settings).getByLabelText("URL of trigger 2") as HTMLInputElement;
    expect(url.value).toBe(`${window.location.origin}/hooks/new-signup`);
    fireEvent.click(within(settings).getByRole("button", { name: "Copy the URL of trigger 2" }));
    await within(settings).findByText(/Copied/);
    expect(writes).toEqual([url.value]);
    expect(within(settings).getByText(/Anyone who knows the URL/)).toBeTruthy();

    // The path's problem: on the trigger, in the problems list, and on its field once opened.
    const problems = screen.getByRole("region", { name: "Problems" });
    const problem = await within(problems).findByRole("button", { name: /trigger 2 · path/ });
    const toggle = within(settings).getByRole("button", { name: /^Webhook POST \/hooks\/new-signup/ });
    expect(toggle.textContent).toContain("1 problem");
    fireEvent.click(problem);
    await waitFor(() => expect(toggle.getAttribute("aria-expanded")).toBe("true"));
    expect(await within(settings).findByText("/hooks/new-signup is served by workflow w7 already")).toBeTruthy();
  });

  it("pauses the workflow through the API without losing unsaved edits, and picks an error workflow", async () => {
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "GET /workflows/": () => json([{ ...WORKFLOW, last_run: null }, { ...WORKFLOW, id: "w2", _id: "w2", name: "Alert on failure", last_run: null }]),
      "POST /workflows/w1/pause": () => json({ ...WORKFLOW, status: "paused", version: 4 }),
      "PUT /workflows/w1": async (request) => json({ ...WORKFLOW, ...((await request.json()) as object), version: 5 }),
    });
    renderEditor("/workflows/w1");
    fireEvent.change(await screen.findByLabelText("Workflow name"), { target: { value: "Renamed" } });
    const settings = await screen.findByRole("region", { name: "Workflow settings" });
    fireEvent.click(within(settings).getByRole("button", { name: "Pause triggers" }));
    await screen.findByText("Version 4");
    expect(within(settings).getByRole("button", { name: "Resume triggers" })).toBeTruthy();
    expect(within(settings).getByText(/Paused: schedules and webhooks start nothing/)).toBeTruthy();
    expect(screen.getByText(/unsaved changes/)).toBeTruthy();
    expect(requestsTo("POST", "/workflows/w1/pause")).toHaveLength(1);

    const picker = within(settings).getByLabelText("Error workflow") as HTMLSelectElement;
    await within(picker).findByRole("option", { name: "Alert on failure" });
    expect(within(picker).getByRole("option", { name: "Seed (this workflow)" })).toBeTruthy();
    fireEvent.change(picker, { target: { value: "w2" } });
    expect(within(settings).getByRole("link", { name: "Open the error workflow" }).getAttribute("href")).toBe("/workflows/w2");
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Version 5");
    const body = (await requestsTo("PUT", "/workflows/w1")[0]?.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ name: "Renamed", status: "paused", error_workflow_id: "w2" });
  });
});
