// @vitest-environment jsdom
// The editor's History: versions listed, a diff with the current version, a restore.
import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { type FakeHandler, fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { TRIGGER_TYPE_FIXTURE } from "../triggers/testing";
import type { Schemas } from "../api/client";
import { DiffView, isEmptyDiff, shortValue } from "../versions/DiffView";
import { render } from "@testing-library/react";
import { EditorPage } from "./EditorPage";

(globalThis as { DOMMatrixReadOnly?: unknown }).DOMMatrixReadOnly ??= class {
  m22 = 1;
};

const NODE_TYPES = ["start", "ai-processor", "end"].map((type) => ({
  type,
  description: "",
  config_schema: {},
  branches: [],
  expression_fields: [],
  side_effects: false,
}));

const WORKFLOW = {
  id: "w1",
  name: "Seed",
  version: 3,
  status: "active",
  variables: [],
  metadata: {},
  created_at: "2026-01-01T00:00:00+00:00",
  updated_at: "2026-01-01T00:00:00+00:00",
  nodes: [{ id: "start", type: "start", config: {}, on_error: "fail", position: { x: 0, y: 0 } }],
  edges: [],
};

const DIFF: Schemas["VersionDiff"] = {
  from: 1,
  to: 3,
  nodes: {
    added: ["end"],
    removed: ["old"],
    changed: [{ id: "ai", changes: [{ path: "config.prompt", from: "Hi", to: "Hello {{ name }}" }] }],
  },
  edges: { added: [{ from: "start", to: "end" }], removed: [{ from: "start", to: "old", branch: "true" }] },
  workflow: [{ path: "name", from: "Old", to: "Seed" }],
};

function api(routes: Record<string, FakeHandler>): FakeHandler {
  return (request) => {
    const path = new URL(request.url).pathname;
    const route = routes[`${request.method} ${path}`];
    if (route) return route(request);
    if (path === "/node-types") return json(NODE_TYPES);
    if (path === "/trigger-types") return json(TRIGGER_TYPE_FIXTURE);
    if (path === "/workflows/validate") return json({ valid: true, issues: [] });
    return undefined;
  };
}

describe("DiffView", () => {
  it("lists added, removed and changed nodes, edges and workflow fields", () => {
    render(<DiffView diff={DIFF} />);
    const group = screen.getByRole("group", { name: "Changes from version 1 to version 3" });
    expect(group.textContent).toContain("+ added end");
    expect(group.textContent).toContain("− removed old");
    const changes = within(group).getByRole("table", { name: "Changes of ai" });
    expect(within(changes).getByRole("rowheader").textContent).toBe("config.prompt");
    expect(changes.textContent).toContain('"Hello {{ name }}"');
    expect(group.textContent).toContain("+ start → end");
    expect(group.textContent).toContain("− start → old (true)");
    expect(within(group).getByRole("table", { name: "Workflow changes" }).textContent).toContain('"Old"');
  });

  it("says when there is no difference, and shortens long values", () => {
    const empty: Schemas["VersionDiff"] = { from: 2, to: 3, nodes: { added: [], removed: [], changed: [] }, edges: { added: [], removed: [] }, workflow: [] };
    expect(isEmptyDiff(empty)).toBe(true);
    render(<DiffView diff={empty} />);
    expect(screen.getByText("No differences between version 2 and version 3.")).toBeTruthy();
    expect(shortValue("x".repeat(200), 10)).toHaveLength(10);
    expect(shortValue(undefined)).toBe("—");
  });
});

describe("History dialog", () => {
  it("lists versions, compares one with the current version and restores it after confirming", async () => {
    fakeApi.handler = api({
      "GET /workflows/w1": () => json(WORKFLOW),
      "GET /workflows/w1/versions": () =>
        json([
          { version: 1, created_at: "2026-01-01T00:00:00+00:00", name: "Old" },
          { version: 3, created_at: "2026-01-03T00:00:00+00:00", name: "Seed" },
          { version: 2, created_at: "2026-01-02T00:00:00+00:00", name: "Seed" },
        ]),
      "GET /workflows/w1/versions/diff": () => json(DIFF),
      "POST /workflows/w1/versions/1/restore": () =>
        json({ ...WORKFLOW, name: "Old", version: 4, nodes: [...WORKFLOW.nodes, { id: "old", type: "end", on_error: "fail", position: { x: 300, y: 0 } }] }),
    });
    renderRoutes([{ path: "/workflows/:id", element: <EditorPage workflowId="w1" /> }], "/workflows/w1");
    fireEvent.click(await screen.findByRole("button", { name: "History" }));
    const versions = await screen.findByRole("table", { name: "Versions" });
    const rows = within(versions).getAllByRole("row").slice(1);
    expect(rows.map((r) => (r as HTMLTableRowElement).cells[0]?.textContent)).toEqual(["v3 current", "v2", "v1"]);

    fireEvent.click(within(versions).getByRole("button", { name: "Compare version 1 with the current one" }));
    const differences = await screen.findByRole("region", { name: "Differences" });
    await within(differences).findByText(/added/);
    const diffCall = requestsTo("GET", "/workflows/w1/versions/diff")[0];
    expect(new URL(diffCall!.url).search).toBe("?from=1&to=3");

    fireEvent.click(within(versions).getByRole("button", { name: "Restore version 1" }));
    const confirm = screen.getByRole("alertdialog", { name: "Restore version 1?" });
    expect(confirm.textContent).toContain("saved as a new version after version 3");
    fireEvent.click(within(confirm).getByRole("button", { name: "Restore version 1" }));
    await screen.findByText("Restored version 1 as version 4.");
    expect((screen.getByLabelText("Workflow name") as HTMLInputElement).value).toBe("Old");
    expect(screen.getByText("Version 4")).toBeTruthy();
    await waitFor(() => expect(document.querySelector('[data-node-id="old"]')).not.toBeNull());
    expect(screen.queryByText(/unsaved changes/)).toBeNull();
  });
});
