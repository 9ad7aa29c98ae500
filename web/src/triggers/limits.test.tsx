// @vitest-environment jsdom
// The workflow's limits (definition `settings`) and its usage, in the settings panel.
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { EditorPage } from "../editor/EditorPage";
import { type FakeHandler, fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { limitIssues, limitValue, withLimit } from "./limits";
import { TRIGGER_TYPE_FIXTURE } from "./testing";

(globalThis as { DOMMatrixReadOnly?: unknown }).DOMMatrixReadOnly ??= class {
  m22 = 1;
};

describe("limits", () => {
  it("sets and clears fields, leaving empty ones out", () => {
    let settings = withLimit(undefined, "max_concurrent_runs", 2);
    expect(settings).toEqual({ max_concurrent_runs: 2 });
    settings = withLimit(settings, "retention.days", 30);
    expect(settings).toEqual({ max_concurrent_runs: 2, retention: { days: 30 } });
    expect(limitValue(settings, "retention.days")).toBe(30);
    settings = withLimit(settings, "retention.days", undefined);
    expect(settings).toEqual({ max_concurrent_runs: 2 });
    expect(withLimit(settings, "max_concurrent_runs", undefined)).toBeUndefined();
    expect(withLimit({ max_cost_per_run: null, retention: null }, "max_cost_per_day", 5)).toEqual({ max_cost_per_day: 5 });
  });

  it("places the validation problems of settings by field", () => {
    expect(
      limitIssues([
        { node_id: null, field: "settings.retention.days", message: "must be at least 1" },
        { node_id: null, field: "settings", message: "bad" },
        { node_id: "a", field: "settings.x", message: "a node's" },
        { node_id: null, field: "triggers", message: "not ours" },
      ]),
    ).toEqual({ "retention.days": ["must be at least 1"], "": ["bad"] });
  });
});

const WORKFLOW = {
  id: "w1",
  name: "Seed",
  version: 3,
  status: "active",
  variables: [],
  metadata: {},
  settings: { max_cost_per_day: 5 },
  created_at: "2026-01-01T00:00:00+00:00",
  updated_at: "2026-01-01T00:00:00+00:00",
  nodes: [{ id: "start", type: "start", config: {}, on_error: "fail", position: { x: 0, y: 0 } }],
  edges: [],
};

function api(routes: Record<string, FakeHandler>): FakeHandler {
  return (request) => {
    const path = new URL(request.url).pathname;
    const route = routes[`${request.method} ${path}`];
    if (route) return route(request);
    if (path === "/node-types") return json([{ type: "start", description: "", config_schema: {}, branches: [], expression_fields: [], side_effects: false }]);
    if (path === "/trigger-types") return json(TRIGGER_TYPE_FIXTURE);
    if (path === "/workflows/") return json([]);
    if (path === "/workflows/validate") return json({ valid: false, issues: [{ node_id: null, field: "settings.max_concurrent_runs", message: "above the server's limit of 50" }] });
    return undefined;
  };
}

describe("Limits in the workflow settings", () => {
  it("shows the saved limits, edits them, saves them and shows their problems; shows the usage", async () => {
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "PUT /workflows/w1": async (request) => json({ ...WORKFLOW, ...((await request.json()) as object), version: 4 }),
      "GET /workflows/w1/usage": () =>
        json({
          total: { runs: 3, prompt_tokens: 900, completion_tokens: 100, total_tokens: 1000, cost: 0.25 },
          days: [
            { date: "2026-12-01", runs: 0, prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, cost: 0 },
            { date: "2026-12-02", runs: 3, prompt_tokens: 900, completion_tokens: 100, total_tokens: 1000, cost: 0.25 },
          ],
        }),
    });
    renderRoutes([{ path: "/workflows/:id", element: <EditorPage workflowId="w1" /> }], "/workflows/w1");
    const limits = await screen.findByRole("group", { name: "Limits and retention" });
    expect((within(limits).getByLabelText("Budget per day ($)") as HTMLInputElement).value).toBe("5");
    fireEvent.change(within(limits).getByLabelText("Runs at once"), { target: { value: "2" } });
    fireEvent.change(within(limits).getByLabelText("Keep runs for (days)"), { target: { value: "30" } });
    await within(limits).findByText("above the server's limit of 50");
    fireEvent.click(screen.getByRole("button", { name: "Save" }));
    await screen.findByText("Version 4");
    const body = (await requestsTo("PUT", "/workflows/w1")[0]?.json()) as { settings: unknown };
    expect(body.settings).toEqual({ max_cost_per_day: 5, max_concurrent_runs: 2, retention: { days: 30 } });

    const usage = screen.getByText("Usage, last 30 days");
    fireEvent.click(usage);
    (usage.parentElement as HTMLDetailsElement).open = true;
    fireEvent(usage.parentElement!, new Event("toggle"));
    const table = await screen.findByRole("table", { name: "Usage by day" });
    expect(within(table).getAllByRole("row")).toHaveLength(2);
    expect(screen.getByLabelText("Usage totals").textContent).toBe("3 runs, 1,000 tokens, $0.25");
    await waitFor(() => expect(requestsTo("GET", "/workflows/w1/usage")[0]?.url).toContain("days=30"));
  });
});
