// @vitest-environment jsdom
// The workflows and runs lists against the fake API (testing/fakeApi.ts).
import { cleanup, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import { routes } from "../App";
import { fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { setTheme } from "../theme";

const ME = { kind: "user", role: "admin", name: "ada@example.com", permissions: [], session: true };
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();

function workflow(id: string, name: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    _id: id,
    name,
    version: 3,
    status: "active",
    nodes: [{ id: "n1", type: "transform", config: {} }],
    edges: [],
    variables: [],
    metadata: {},
    created_at: "2026-01-01T00:00:00+00:00",
    updated_at: "2026-01-01T00:00:00+00:00",
    last_run: null,
    ...extra,
  };
}

const SIGNUPS = workflow("w1", "Summarise signups", {
  last_run: {
    execution_id: "e-last-1",
    status: "error",
    created_at: minutesAgo(3),
    start_time: minutesAgo(3),
    end_time: minutesAgo(2),
  },
});
const BILLING = workflow("w2", "Nightly billing");

function run(index: number, extra: Record<string, unknown> = {}) {
  return {
    execution_id: `r${String(index).padStart(3, "0")}abcd-ef01`,
    workflow_id: "w1",
    workflow_name: "Summarise signups",
    workflow_version: 3,
    status: "success",
    trigger: null,
    created_at: minutesAgo(index + 1),
    start_time: minutesAgo(index + 1),
    end_time: new Date(Date.parse(minutesAgo(index + 1)) + 1500).toISOString(),
    error: null,
    dead_letter: false,
    ...extra,
  };
}

/** A fake API: `/auth/me`, then the given routes by "METHOD path". */
function serve(routes: Record<string, (request: Request) => Response>) {
  fakeApi.handler = (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/auth/me") return json(ME);
    return routes[`${request.method} ${path}`]?.(request);
  };
}

/** GET /workflows/ as the server answers it: `q` matched case-insensitively as a substring. */
function searchable(listed: () => ReturnType<typeof workflow>[]) {
  return (request: Request) => {
    const q = new URL(request.url).searchParams.get("q")?.toLowerCase() ?? "";
    return json(listed().filter((w) => w.name.toLowerCase().includes(q)));
  };
}

/** The `q` of each GET /workflows/ so far (null: none sent). */
function searchesSent(): (string | null)[] {
  return requestsTo("GET", "/workflows/").map((r) => new URL(r.url).searchParams.get("q"));
}

const renderAt = (path: string) => renderRoutes(routes, path);

// Unmounted before the theme is reset (the setup file also unmounts, and resets fakeApi).
afterEach(() => {
  cleanup();
  setTheme("system");
});

describe("workflows list", () => {
  it("shows each workflow's last run as a linked badge with a relative time, or never", async () => {
    serve({ "GET /workflows/": () => json([SIGNUPS, BILLING]) });
    renderAt("/");
    const row = (await screen.findByRole("link", { name: "Summarise signups" })).closest("tr");
    if (!row) throw new Error("no row");
    const badge = within(row).getByRole("link", { name: "error" });
    expect(badge.getAttribute("href")).toBe("/runs/e-last-1");
    const time = row.querySelector("time");
    expect(time?.textContent).toBe("3 minutes ago");
    expect(time?.getAttribute("title")).toBeTruthy();
    const other = screen.getByRole("link", { name: "Nightly billing" }).closest("tr");
    expect(other?.textContent).toContain("never");
    expect(screen.getAllByRole("columnheader").map((th) => th.textContent)).toEqual([
      "Name",
      "Version",
      "Status",
      "Last run",
      "Actions",
    ]);
  });

  it("shows a paused workflow as paused, and what starts each workflow", async () => {
    const triggered = workflow("w3", "Hourly digest", {
      status: "paused",
      triggers: [{ type: "schedule", cron: "0 * * * *" }, { type: "webhook", path: "a" }, { type: "webhook", path: "b" }],
    });
    serve({ "GET /workflows/": () => json([triggered, BILLING]) });
    renderAt("/");
    const row = (await screen.findByRole("link", { name: "Hourly digest" })).closest("tr") as HTMLElement;
    const badge = within(row).getByText("paused");
    expect(badge.className).toBe("badge badge-paused");
    expect(row.textContent).toContain("schedule · 2 webhooks");
    const other = screen.getByRole("link", { name: "Nightly billing" }).closest("tr") as HTMLElement;
    expect(within(other).getByText("active").className).toBe("badge badge-active");
  });

  it("searches on the server as the user types (once typing pauses), keeping the search in the URL", async () => {
    // The server's answer is shown as it is: a name without "BILL" in it proves no
    // client-side filter is left (the server may match what the page never loaded).
    const INVOICES = workflow("w7", "Invoices");
    serve({
      "GET /workflows/": (request) =>
        json(new URL(request.url).searchParams.get("q") === "BILL" ? [BILLING, INVOICES] : [SIGNUPS, BILLING]),
    });
    const router = renderAt("/");
    await screen.findByRole("link", { name: "Nightly billing" });
    const box = screen.getByRole("searchbox", { name: "Search workflows" });
    fireEvent.change(box, { target: { value: "B" } });
    fireEvent.change(box, { target: { value: "BILL " } });
    await screen.findByRole("link", { name: "Invoices" });
    expect(screen.queryByRole("link", { name: "Summarise signups" })).toBeNull();
    expect(screen.getByRole("link", { name: "Nightly billing" })).toBeTruthy();
    expect(router.state.location.search).toBe("?q=BILL+");
    // Debounced: no request for "B"; the spaces around the search are not sent.
    expect(searchesSent()).toEqual([null, "BILL"]);
    const [, searched] = requestsTo("GET", "/workflows/");
    expect(new URL(searched?.url ?? "").searchParams.get("offset")).toBe("0");
  });

  it("pages through the server's matches, and a new search starts at its first page", async () => {
    const many = Array.from({ length: 100 }, (_, i) => workflow(`w${i}`, `Flow ${i}`));
    serve({
      "GET /workflows/": (request) => {
        const params = new URL(request.url).searchParams;
        if (params.get("q") === "flow") return json(params.get("offset") === "100" ? [workflow("w100", "Last flow")] : many);
        return json([BILLING]);
      },
    });
    const router = renderAt("/?q=flow");
    fireEvent.click(await screen.findByRole("button", { name: "Next page" }));
    await screen.findByRole("link", { name: "Last flow" });
    expect(router.state.location.search).toBe("?q=flow&page=2");
    const last = requestsTo("GET", "/workflows/").at(-1);
    expect(Object.fromEntries(new URL(last?.url ?? "").searchParams)).toEqual({ q: "flow", limit: "100", offset: "100" });

    fireEvent.change(screen.getByRole("searchbox", { name: "Search workflows" }), { target: { value: "night" } });
    await screen.findByRole("link", { name: "Nightly billing" });
    expect(router.state.location.search).toBe("?q=night");
    expect(new URL(requestsTo("GET", "/workflows/").at(-1)?.url ?? "").searchParams.get("offset")).toBe("0");
  });

  it("clears the box when the URL loses its search (the Workflows link)", async () => {
    serve({ "GET /workflows/": searchable(() => [SIGNUPS, BILLING]) });
    const router = renderAt("/?q=bill");
    await screen.findByRole("link", { name: "Nightly billing" });
    expect(screen.queryByRole("link", { name: "Summarise signups" })).toBeNull();
    fireEvent.click(screen.getByRole("link", { name: "Workflows" }));
    await screen.findByRole("link", { name: "Summarise signups" });
    expect((screen.getByRole("searchbox", { name: "Search workflows" }) as HTMLInputElement).value).toBe("");
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(router.state.location.search).toBe("");
  });

  it("reads the search from the URL and says when the server found nothing", async () => {
    serve({ "GET /workflows/": searchable(() => [SIGNUPS, BILLING]) });
    renderAt("/?q=zzz");
    expect((await screen.findByText(/No workflows match/)).textContent).toBe("No workflows match “zzz”.");
    expect(screen.queryByRole("link", { name: "Create your first workflow" })).toBeNull();
    expect((screen.getByRole("searchbox", { name: "Search workflows" }) as HTMLInputElement).value).toBe("zzz");
    expect(searchesSent()).toEqual(["zzz"]);
  });

  it("asks before deleting, then calls DELETE and refreshes", async () => {
    let listed = [SIGNUPS, BILLING];
    serve({
      "GET /workflows/": () => json(listed),
      "DELETE /workflows/w2": () => {
        listed = [SIGNUPS];
        return new Response(null, { status: 204 });
      },
    });
    renderAt("/");
    const opener = await screen.findByRole("button", { name: "Delete Nightly billing" });
    opener.focus(); // as a real click or keypress would
    fireEvent.click(opener);
    const dialog = screen.getByRole("alertdialog", { name: "Delete Nightly billing?" });
    expect(requestsTo("DELETE", "/workflows/w2")).toHaveLength(0);
    // Focus starts on Cancel, so Enter on a reflex does not delete.
    expect(document.activeElement?.textContent).toBe("Cancel");
    fireEvent.click(within(dialog).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(screen.queryByRole("link", { name: "Nightly billing" })).toBeNull());
    expect(requestsTo("DELETE", "/workflows/w2")).toHaveLength(1);
    expect(screen.queryByRole("alertdialog")).toBeNull();
    expect(screen.getByRole("status").textContent).toMatch(/Deleted Nightly billing/);
    // The Delete button that opened the dialog is gone: focus goes to the search box, not <body>.
    expect(document.activeElement).toBe(screen.getByRole("searchbox", { name: "Search workflows" }));
  });

  it("cancelling the dialog deletes nothing; a refused delete stays in the dialog", async () => {
    serve({
      "GET /workflows/": () => json([SIGNUPS]),
      "DELETE /workflows/w1": () => json({ detail: "workflow w1 has runs in progress" }, 409),
    });
    renderAt("/");
    const opener = await screen.findByRole("button", { name: "Delete Summarise signups" });
    opener.focus(); // as a real click or keypress would
    fireEvent.click(opener);
    fireEvent.click(screen.getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("alertdialog")).toBeNull();
    expect(requestsTo("DELETE", "/workflows/w1")).toHaveLength(0);
    expect(document.activeElement).toBe(opener);

    fireEvent.click(screen.getByRole("button", { name: "Delete Summarise signups" }));
    fireEvent.click(screen.getByRole("button", { name: "Delete" }));
    const alert = await within(screen.getByRole("alertdialog")).findByRole("alert");
    expect(alert.textContent).toBe("workflow w1 has runs in progress");
  });

  it("imports a JSON file: posts its definition and opens the new workflow", async () => {
    serve({
      "GET /workflows/": () => json([SIGNUPS]),
      "POST /workflows/": () => json(workflow("w9", "Imported"), 201),
    });
    const router = renderAt("/");
    await screen.findByRole("button", { name: "Import JSON" });
    const file = new File([JSON.stringify({ id: "old", version: 7, name: "Imported", nodes: [], edges: [] })], "imported.json", {
      type: "application/json",
    });
    fireEvent.change(screen.getByLabelText("Workflow JSON file"), { target: { files: [file] } });
    await waitFor(() => expect(router.state.location.pathname).toBe("/workflows/w9"));
    const [post] = requestsTo("POST", "/workflows/");
    expect(await post?.clone().json()).toEqual({ name: "Imported", nodes: [], edges: [] });
  });

  it("shows the server's 422 problems of an import, one per line", async () => {
    serve({
      "GET /workflows/": () => json([SIGNUPS]),
      "POST /workflows/": () =>
        json(
          {
            message: "workflow is invalid",
            detail: [
              { node_id: "fetch", field: "config.url", message: "Field required" },
              { node_id: null, field: "edges", message: "edge to unknown node x" },
            ],
          },
          422,
        ),
    });
    renderAt("/");
    await screen.findByRole("button", { name: "Import JSON" });
    const file = new File(['{"name": "Bad", "nodes": [{"id": "fetch", "type": "http"}]}'], "bad.json");
    fireEvent.change(screen.getByLabelText("Workflow JSON file"), { target: { files: [file] } });
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toContain("Could not import bad.json");
    expect(within(alert).getAllByRole("listitem").map((li) => li.textContent)).toEqual([
      "node fetch, field config.url: Field required",
      "field edges: edge to unknown node x",
    ]);
  });

  it("refuses a file that is not a workflow without calling the server", async () => {
    serve({ "GET /workflows/": () => json([SIGNUPS]) });
    renderAt("/");
    await screen.findByRole("button", { name: "Import JSON" });
    fireEvent.change(screen.getByLabelText("Workflow JSON file"), {
      target: { files: [new File(['{"nodes": []}'], "nameless.json")] },
    });
    expect((await screen.findByRole("alert")).textContent).toMatch(/nameless\.json.*no name/);
    expect(requestsTo("POST", "/workflows/")).toHaveLength(0);
  });

  it("duplicates from the full workflow as “<name> (copy)”", async () => {
    serve({
      "GET /workflows/": () => json([SIGNUPS]),
      "GET /workflows/w1": () => json(SIGNUPS),
      "POST /workflows/": () => json(workflow("w3", "Summarise signups (copy)"), 201),
    });
    renderAt("/");
    fireEvent.click(await screen.findByRole("button", { name: "Duplicate Summarise signups" }));
    expect((await screen.findByRole("status")).textContent).toBe("Created Summarise signups (copy).");
    const body = await requestsTo("POST", "/workflows/")[0]?.clone().json();
    expect(body).toEqual({
      name: "Summarise signups (copy)",
      status: "active",
      nodes: SIGNUPS.nodes,
      edges: [],
      variables: [],
      metadata: {},
    });
  });

  it("has an empty state with a call to action", async () => {
    serve({ "GET /workflows/": () => json([]) });
    renderAt("/");
    expect((await screen.findByRole("link", { name: "Create your first workflow" })).getAttribute("href")).toBe(
      "/workflows/new",
    );
  });

  it("pages by 100", async () => {
    const many = Array.from({ length: 100 }, (_, i) => workflow(`w${i}`, `Flow ${i}`));
    serve({
      "GET /workflows/": (request) =>
        json(new URL(request.url).searchParams.get("offset") === "100" ? [BILLING] : many),
    });
    const router = renderAt("/");
    fireEvent.click(await screen.findByRole("button", { name: "Next page" }));
    await screen.findByRole("link", { name: "Nightly billing" });
    expect(router.state.location.search).toBe("?page=2");
    expect((screen.getByRole("button", { name: "Next page" }) as HTMLButtonElement).disabled).toBe(true);
  });
});

describe("runs list", () => {
  it("lists runs across workflows with status, workflow, duration and trigger", async () => {
    serve({
      "GET /workflows/executions": () =>
        json([
          run(1),
          run(2, { status: "running", end_time: null, trigger: { type: "schedule", key: "k", slot: "2026-12-03T07:40:00Z" } }),
          run(3, { trigger: { type: "webhook", path: "new-signup", method: "POST" } }),
          run(4, { status: "success", trigger: { type: "error", execution_id: "r002abcd-ef01", workflow_id: "w1" } }),
        ]),
    });
    renderAt("/runs");
    await screen.findByRole("link", { name: "Open run r001abcd" });
    const links = screen.getAllByRole("link", { name: /^Open run / });
    expect(links.map((a) => a.getAttribute("href"))).toEqual([
      "/runs/r001abcd-ef01",
      "/runs/r002abcd-ef01",
      "/runs/r003abcd-ef01",
      "/runs/r004abcd-ef01",
    ]);
    const [first, second, third, fourth] = links.map((a) => a.closest("tr"));
    expect(first?.textContent).toContain("success");
    expect(first?.textContent).toContain("1.5 s");
    expect(first?.textContent).toContain("—");
    expect(within(first as HTMLElement).getByRole("link", { name: "Summarise signups" }).getAttribute("href")).toBe(
      "/workflows/w1",
    );
    expect(second?.textContent).toContain("running");
    expect(second?.textContent).toContain("schedule");
    expect(second?.querySelector("time[datetime='2026-12-03T07:40:00Z']")).toBeTruthy();
    expect(third?.textContent).toContain("webhookPOST /hooks/new-signup");
    expect(fourth?.textContent).toContain("error");
    expect(within(fourth as HTMLElement).getByRole("link", { name: "Failed run r002abcd" }).getAttribute("href")).toBe(
      "/runs/r002abcd-ef01",
    );
    const [request] = requestsTo("GET", "/workflows/executions");
    const query = new URL(request?.url ?? "").searchParams;
    expect(query.get("limit")).toBe("25");
    expect(query.get("offset")).toBe("0");
    expect(query.has("status")).toBe(false);
  });

  it("the Status filter changes the request's status and the URL", async () => {
    serve({ "GET /workflows/executions": () => json([run(1)]) });
    const router = renderAt("/runs");
    await screen.findByRole("link", { name: /^Open run / });
    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "error" } });
    await waitFor(() => expect(router.state.location.search).toBe("?status=error"));
    await waitFor(() =>
      expect(requestsTo("GET", "/workflows/executions").map((r) => new URL(r.url).searchParams.get("status"))).toContain(
        "error",
      ),
    );
    fireEvent.change(screen.getByLabelText("Status"), { target: { value: "" } });
    await waitFor(() => expect(router.state.location.search).toBe(""));
  });

  it("the Started by filter sends ?trigger= and keeps the status", async () => {
    serve({ "GET /workflows/executions": () => json([run(1)]) });
    const router = renderAt("/runs?status=error");
    await screen.findByRole("link", { name: /^Open run / });
    fireEvent.change(screen.getByLabelText("Started by"), { target: { value: "webhook" } });
    await waitFor(() => expect(router.state.location.search).toBe("?status=error&trigger=webhook"));
    await waitFor(() => {
      const last = new URL(requestsTo("GET", "/workflows/executions").at(-1)?.url ?? "").searchParams;
      expect([last.get("status"), last.get("trigger")]).toEqual(["error", "webhook"]);
    });
    cleanup();
    serve({ "GET /workflows/executions": () => json([]) });
    renderAt("/runs?trigger=schedule");
    expect(await screen.findByText("No runs started by schedule.")).toBeTruthy();
  });

  it("pages by 25, next disabled when a page is not full", async () => {
    serve({
      "GET /workflows/executions": (request) => {
        const offset = Number(new URL(request.url).searchParams.get("offset"));
        return json(offset === 0 ? Array.from({ length: 25 }, (_, i) => run(i)) : [run(99)]);
      },
    });
    const router = renderAt("/runs?status=success");
    await screen.findAllByRole("link", { name: /^Open run / });
    expect((screen.getByRole("button", { name: "Previous page" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Next page" }));
    await screen.findByRole("link", { name: "Open run r099abcd" });
    expect(router.state.location.search).toBe("?status=success&page=2");
    const last = requestsTo("GET", "/workflows/executions").at(-1);
    expect(new URL(last?.url ?? "").searchParams.get("offset")).toBe("25");
    expect(new URL(last?.url ?? "").searchParams.get("status")).toBe("success");
    expect((screen.getByRole("button", { name: "Next page" }) as HTMLButtonElement).disabled).toBe(true);
    fireEvent.click(screen.getByRole("button", { name: "Previous page" }));
    await waitFor(() => expect(router.state.location.search).toBe("?status=success"));
  });

  it("for one workflow: its name as the heading, a link back, runs read without their events", async () => {
    serve({
      "GET /workflows/w1": () => json(SIGNUPS),
      "GET /workflows/executions": () => json([run(1)]),
    });
    renderAt("/workflows/w1/runs?status=success");
    expect(await screen.findByRole("heading", { level: 1, name: "Summarise signups" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Edit workflow" }).getAttribute("href")).toBe("/workflows/w1");
    await screen.findByRole("link", { name: /^Open run / });
    // Not GET /workflows/w1/executions: that one sends every run's whole event log.
    expect(requestsTo("GET", "/workflows/w1/executions")).toHaveLength(0);
    const [request] = requestsTo("GET", "/workflows/executions");
    expect(new URL(request?.url ?? "").searchParams.get("workflow_id")).toBe("w1");
    expect(new URL(request?.url ?? "").searchParams.get("status")).toBe("success");
    expect((screen.getByLabelText("Status") as HTMLSelectElement).value).toBe("success");
  });

  it("asks again while a run is unfinished", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      serve({ "GET /workflows/executions": () => json([run(1, { status: "running", end_time: null })]) });
      renderAt("/runs");
      await screen.findByRole("link", { name: /^Open run / });
      const before = requestsTo("GET", "/workflows/executions").length;
      await vi.advanceTimersByTimeAsync(3500);
      await waitFor(() => expect(requestsTo("GET", "/workflows/executions").length).toBeGreaterThan(before));
    } finally {
      vi.useRealTimers();
    }
  });

  it("does not poll when every run has finished", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      serve({ "GET /workflows/executions": () => json([run(1)]) });
      renderAt("/runs");
      await screen.findByRole("link", { name: /^Open run / });
      const before = requestsTo("GET", "/workflows/executions").length;
      await vi.advanceTimersByTimeAsync(10_000);
      expect(requestsTo("GET", "/workflows/executions").length).toBe(before);
    } finally {
      vi.useRealTimers();
    }
  });

  it("shows an empty state and errors readably", async () => {
    serve({ "GET /workflows/executions": () => json({ detail: "the store is unavailable" }, 503) });
    renderAt("/runs");
    expect((await screen.findByRole("alert")).textContent).toContain("the store is unavailable");
    cleanup();
    serve({ "GET /workflows/executions": () => json([]) });
    renderAt("/runs?status=dead");
    expect(await screen.findByText("No dead runs.")).toBeTruthy();
  });
});

describe("shell", () => {
  it("links to Runs and cycles the Theme system → light → dark", async () => {
    serve({ "GET /workflows/": () => json([]) });
    renderAt("/");
    expect((await screen.findByRole("link", { name: "Runs" })).getAttribute("href")).toBe("/runs");
    const toggle = screen.getByRole("button", { name: "Theme" });
    expect(toggle.textContent).toBe("Theme: system");
    fireEvent.click(toggle);
    expect(document.documentElement.getAttribute("data-theme")).toBe("light");
    fireEvent.click(toggle);
    expect(document.documentElement.getAttribute("data-theme")).toBe("dark");
    expect(localStorage.getItem("ductwork:theme")).toBe("dark");
    expect(toggle.getAttribute("data-theme-choice")).toBe("dark");
    fireEvent.click(toggle);
    expect(document.documentElement.hasAttribute("data-theme")).toBe(false);
  });
});
