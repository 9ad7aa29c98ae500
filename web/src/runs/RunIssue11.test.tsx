// @vitest-environment jsdom
// The run view's issue-11 parts: loop progress and item picking, usage and cost, the
// parent and child runs, the queued reason, and deleting a run.
import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { RunPage } from "./RunPage";

const NODE_TYPES = ["start", "loop", "ai-processor", "end"].map((type) => ({
  type,
  description: "",
  config_schema: {},
  branches: [],
  expression_fields: [],
  side_effects: false,
}));

class FakeSocket {
  static last: FakeSocket | null = null;
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  constructor(readonly url: string) {
    FakeSocket.last = this;
  }
  close() {}
  send(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }
}

beforeAll(() => {
  globalThis.WebSocket = FakeSocket as unknown as typeof WebSocket;
  globalThis.requestAnimationFrame = (callback: FrameRequestCallback) => {
    queueMicrotask(() => callback(0));
    return 0;
  };
  globalThis.cancelAnimationFrame = () => {};
});

const CHILD = { execution_id: "child-run-1", workflow_id: "w2", workflow_version: 1, status: "success", parent_execution_id: "r1", parent_node_id: "call" };
const UNRELATED = { ...CHILD, execution_id: "other-run", parent_execution_id: null };

beforeEach(() => {
  fakeApi.handler = (request) => {
    const url = new URL(request.url);
    if (url.pathname === "/node-types") return json(NODE_TYPES);
    if (url.pathname === "/workflows/executions" && request.method === "GET") return json([CHILD, UNRELATED]);
    if (url.pathname === "/workflows/executions/r1" && request.method === "DELETE") return new Response(null, { status: 204 });
    return json({ detail: "not found" }, 404);
  };
});

const T = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, "0")}+00:00`;

function snapshot(run: Record<string, unknown>) {
  return {
    type: "snapshot",
    last_seq: 3,
    run: {
      execution_id: "r1",
      workflow_id: "w1",
      workflow_version: 2,
      status: "running",
      created_at: T(0),
      start_time: T(1),
      end_time: null,
      error: null,
      variables: {},
      logs: [],
      errors: [],
      node_states: {
        start: { status: "completed", attempts: 1 },
        loop1: { status: "running", attempts: 1 },
        "loop1[0]": { status: "completed", output: "A" },
        "loop1[1]": { status: "failed", error: "boom" },
        "loop1[2]": { status: "running" },
        "sum[0]": { status: "completed", output: "summary 0", usage: { model: "gpt-x", prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, cost: 0.0042, calls: 1 } },
        "sum[1]": { status: "failed", error: "boom" },
      },
      definition: {
        name: "Summaries",
        nodes: [
          { id: "start", type: "start", position: { x: 0, y: 0 } },
          { id: "loop1", type: "loop", position: { x: 250, y: 0 }, size: { width: 400, height: 220 } },
          { id: "sum", type: "ai-processor", parent: "loop1", position: { x: 20, y: 60 } },
          { id: "end", type: "end", position: { x: 800, y: 0 } },
        ],
        edges: [
          { from: "start", to: "loop1" },
          { from: "loop1", to: "end" },
        ],
      },
      ...run,
    },
  };
}

async function renderRun(run: Record<string, unknown> = {}) {
  const router = renderRoutes(
    [
      { path: "/runs/:id", element: <RunPage executionId="r1" /> },
      { path: "/runs", element: <p>Runs list</p> },
    ],
    "/runs/r1",
  );
  await waitFor(() => expect(FakeSocket.last?.url).toContain("/ws/executions/r1"));
  const socket = FakeSocket.last!;
  await act(async () => socket.send(snapshot(run)));
  return { socket, router };
}

describe("RunPage for loops, usage and sub-workflows", () => {
  it("shows a loop's progress and the body's states of the picked item", async () => {
    await renderRun();
    await screen.findByText("Run status: running");
    const loop = await waitFor(() => {
      const el = document.querySelector('[data-node-id="loop1"]');
      expect(el).not.toBeNull();
      return el as HTMLElement;
    });
    expect(within(loop).getByLabelText("loop1 items").textContent).toBe("1/3 done, 1 failed, 1 running");
    const body = () => document.querySelector('[data-node-id="sum"]')?.getAttribute("data-status");
    expect(body()).toBe("queued");
    const picker = within(loop).getByLabelText("Item") as HTMLSelectElement;
    fireEvent.change(picker, { target: { value: "1" } });
    await waitFor(() => expect(body()).toBe("failed"));
    fireEvent.change(picker, { target: { value: "0" } });
    await waitFor(() => expect(body()).toBe("completed"));

    // The body node's details are the item's: output, tokens and cost.
    fireEvent.click(document.querySelector('[data-node-id="sum"]')!);
    const details = screen.getByRole("region", { name: "Node details" });
    await waitFor(() => expect(details.textContent).toContain("Item 0 of loop1."));
    expect(details.textContent).toContain("summary 0");
    expect(details.textContent).toContain("The item of loop1 this node ran for.");
    expect(within(details).getByLabelText("Tokens").textContent).toContain("120 (100 prompt, 20 completion)");
    expect(details.textContent).toContain("$0.0042");
  });

  it("shows the run's usage, its parent, its children and a finished usage update", async () => {
    const { socket } = await renderRun({
      parent_execution_id: "parent-run-1",
      parent_node_id: "call",
      depth: 1,
      usage: { prompt_tokens: 100, completion_tokens: 20, total_tokens: 120, cost: 0.0042, calls: 1, unpriced_calls: 0, by_model: {} },
    });
    await screen.findByText("Run status: running");
    expect(screen.getByRole("link", { name: "Parent run parent-run-1" }).getAttribute("href")).toBe("/runs/parent-run-1");
    expect(screen.getByLabelText("Run tokens").textContent).toContain("120");
    expect(screen.getByLabelText("Run cost").textContent).toBe("$0.0042");
    const children = await screen.findByRole("region", { name: "Child runs" });
    expect(within(children).getAllByRole("listitem")).toHaveLength(1);
    expect(within(children).getByRole("link").getAttribute("href")).toBe("/runs/child-run-1");
    expect(requestsTo("GET", "/workflows/executions")[0]?.url).toContain("parent_execution_id=r1");

    await act(async () => {
      socket.send({
        seq: 4,
        type: "run_finished",
        node_id: null,
        timestamp: T(5),
        data: { status: "success", usage: { prompt_tokens: 300, completion_tokens: 50, cost: 1.5, calls: 3, unpriced_calls: 1, by_model: {} } },
      });
    });
    await waitFor(() => expect(screen.getByLabelText("Run cost").textContent).toContain("$1.50"));
    expect(screen.getByLabelText("Run cost").textContent).toContain("1 unpriced call not counted");
  });

  it("shows why a queued run waits", async () => {
    await renderRun({ status: "queued", start_time: null, queued_reason: "waiting for a slot: 2 of 2 runs of this workflow are running" });
    expect(await screen.findByText("waiting for a slot: 2 of 2 runs of this workflow are running")).toBeTruthy();
  });

  it("deletes a finished run after confirming, then shows the runs list", async () => {
    const { router } = await renderRun({ status: "success", end_time: T(9) });
    const remove = (await screen.findByRole("button", { name: "Delete run" })) as HTMLButtonElement;
    await waitFor(() => expect(remove.disabled).toBe(false));
    fireEvent.click(remove);
    const dialog = await screen.findByRole("alertdialog");
    fireEvent.click(within(dialog).getByRole("button", { name: "Delete" }));
    await waitFor(() => expect(router.state.location.pathname).toBe("/runs"));
    expect(requestsTo("DELETE", "/workflows/executions/r1")).toHaveLength(1);
  });
});
