// @vitest-environment jsdom
import { act, fireEvent, screen, waitFor, within } from "@testing-library/react";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fakeApi, json, requestsTo } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { RunPage } from "./RunPage";

const NODE_TYPES = [
  { type: "start", description: "", config_schema: {}, branches: [], expression_fields: [], side_effects: false },
  { type: "condition", description: "", config_schema: {}, branches: ["true", "false"], expression_fields: [], side_effects: false },
  { type: "end", description: "", config_schema: {}, branches: [], expression_fields: [], side_effects: false },
];

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
  // Frames run at once here: the batching itself is covered in stream.test.ts.
  globalThis.requestAnimationFrame = (callback: FrameRequestCallback) => {
    queueMicrotask(() => callback(0));
    return 0;
  };
  globalThis.cancelAnimationFrame = () => {};
});

beforeEach(() => {
  fakeApi.handler = (request) => {
    const path = new URL(request.url).pathname;
    if (path === "/node-types") return json(NODE_TYPES);
    if (path.endsWith("/cancel")) return json({ detail: "run r1 is already finished" }, 409);
    if (path.endsWith("/retry")) return json({ execution_id: "r1", status: "queued" });
    return json({ detail: "not found" }, 404);
  };
});

const T = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, "0")}+00:00`;

const SNAPSHOT = {
  type: "snapshot",
  last_seq: 3,
  run: {
    execution_id: "r1",
    workflow_id: "w1",
    workflow_version: 4,
    status: "running",
    created_at: T(0),
    start_time: T(1),
    end_time: null,
    error: null,
    variables: { value: 42 },
    node_states: {
      start: { status: "completed", output: { value: 42 }, attempts: 1, started_at: T(1), finished_at: T(2) },
      check: { status: "running", attempts: 1, started_at: T(2) },
    },
    logs: [{ timestamp: T(2), node_id: "check", level: "info", message: "Executing condition node" }],
    errors: [],
    definition: {
      name: "Route by value",
      nodes: [
        { id: "start", type: "start" },
        { id: "check", type: "condition", name: "Big?", config: { condition: "value > 10" } },
        { id: "end", type: "end" },
      ],
      edges: [
        { from: "start", to: "check" },
        { from: "check", to: "end", branch: "true" },
      ],
    },
  },
};

async function renderRun(snapshot: object = SNAPSHOT) {
  renderRoutes([{ path: "*", element: <RunPage executionId="r1" /> }], "/runs/r1");
  await waitFor(() => expect(FakeSocket.last?.url).toBe("ws://localhost:3000/ws/executions/r1?after=0&paged=true"));
  const socket = FakeSocket.last!;
  await act(async () => socket.send(snapshot));
  return socket;
}

describe("RunPage", () => {
  it("draws the run from its snapshot and follows its events", async () => {
    const socket = await renderRun();
    expect(await screen.findByText("Run status: running")).toHaveProperty("tagName", "P");
    expect(screen.getByRole("heading", { level: 1 }).textContent).toContain("Route by value");
    expect(screen.getByRole("link", { name: "Open in editor" }).getAttribute("href")).toBe("/workflows/w1");
    expect((screen.getByRole("button", { name: "Cancel run" }) as HTMLButtonElement).disabled).toBe(false);
    expect((screen.getByRole("button", { name: "Retry run" }) as HTMLButtonElement).disabled).toBe(true);
    await waitFor(() => expect(document.querySelector('[data-node-id="check"]')?.getAttribute("data-status")).toBe("running"));
    expect(document.querySelector('[data-node-id="end"]')?.getAttribute("data-status")).toBe("queued");

    // Picking a node in the timeline opens its details: input derived from start's output.
    const timeline = screen.getByRole("region", { name: "Timeline" });
    fireEvent.click(within(timeline).getByRole("button", { name: "Big?" }));
    const details = screen.getByRole("region", { name: "Node details" });
    expect(details.textContent).toContain("The output of start.");
    expect(within(details).getByRole("list", { name: "Logs of Big?" }).textContent).toContain("Executing condition node");

    await act(async () => {
      socket.send({ seq: 3, type: "token", node_id: "check", timestamp: T(3), data: { text: "thinking" } });
      socket.send({ seq: 4, type: "log", node_id: "check", timestamp: T(3), data: { level: "info", message: "evaluated" } });
      socket.send({ seq: 5, type: "node_completed", node_id: "check", timestamp: T(4), data: { output: true, branch: "true", cached: true, latency_ms: 2 } });
    });
    await waitFor(() => expect(document.querySelector('[data-node-id="check"]')?.getAttribute("data-status")).toBe("completed"));
    expect(within(details).getByRole("list", { name: "Logs of Big?" }).textContent).toContain("evaluated");
    expect(details.textContent).toContain("Branch taken");
    expect(within(timeline).getByRole("img", { name: "Big?: 2.0 s (cached), completed" })).toBeTruthy();

    await act(async () => {
      socket.send({ seq: 6, type: "run_finished", node_id: null, timestamp: T(5), data: { status: "error", error: "node end failed: boom" } });
    });
    expect(await screen.findByText("Run status: error")).toBeTruthy();
    expect(screen.getByRole("alert").textContent).toContain("node end failed: boom");
    expect((screen.getByRole("button", { name: "Retry run" }) as HTMLButtonElement).disabled).toBe(false);
  });

  it("keeps Retry disabled after a retry until the restarted stream brings news", async () => {
    const socket = await renderRun();
    await act(async () => {
      socket.send({ seq: 4, type: "run_finished", node_id: null, timestamp: T(5), data: { status: "error", error: "boom" } });
    });
    const retry = (await screen.findByRole("button", { name: "Retry run" })) as HTMLButtonElement;
    await waitFor(() => expect(retry.disabled).toBe(false));
    fireEvent.click(retry);
    await waitFor(() => expect(fakeApi.requests.some((r) => r.url.endsWith("/workflows/executions/r1/retry"))).toBe(true));
    // The answer came, the old status is still on screen: a second click would get a 409.
    await waitFor(() => expect(FakeSocket.last).not.toBe(socket));
    expect(screen.getByText("Run status: error")).toBeTruthy();
    expect(retry.disabled).toBe(true);
    const restarted = FakeSocket.last!;
    await act(async () => restarted.send({ ...SNAPSHOT, last_seq: 5, run: { ...SNAPSHOT.run, status: "queued" } }));
    expect(await screen.findByText("Run status: queued")).toBeTruthy();
    await act(async () => {
      restarted.send({ seq: 6, type: "run_finished", node_id: null, timestamp: T(6), data: { status: "error", error: "boom again" } });
    });
    await waitFor(() => expect(retry.disabled).toBe(false));
  });

  it("shows why a cancel failed", async () => {
    await renderRun();
    fireEvent.click(await screen.findByRole("button", { name: "Cancel run" }));
    expect(await screen.findByText("Could not cancel the run: run r1 is already finished")).toBeTruthy();
    expect(fakeApi.requests.some((r) => r.method === "POST" && r.url.endsWith("/workflows/executions/r1/cancel"))).toBe(true);
  });

  it("says what started the run: an error workflow's run links to the failed run", async () => {
    const trigger = { type: "error", execution_id: "f00dcafe-1234", workflow_id: "w0" };
    await renderRun({ ...SNAPSHOT, run: { ...SNAPSHOT.run, trigger } });
    await screen.findByText("Run status: running");
    const facts = screen.getByText("Started by").nextElementSibling as HTMLElement;
    expect(facts.textContent).toContain("error");
    expect(within(facts).getByRole("link", { name: "Failed run f00dcafe" }).getAttribute("href")).toBe("/runs/f00dcafe-1234");
  });

  it("shows a step waiting for a person with its resume link, and answers it with Approve", async () => {
    const link = "http://localhost:3000/resume/r1.approve.sig";
    const handler = fakeApi.handler;
    fakeApi.handler = (request) =>
      new URL(request.url).pathname === "/workflows/executions/r1/nodes/approve/resume"
        ? json({ execution_id: "r1", node_id: "approve", status: "resumed" }, 202)
        : handler(request);
    const run = {
      ...SNAPSHOT.run,
      status: "running",
      node_states: { start: SNAPSHOT.run.node_states.start, approve: { status: "running", attempts: 1, started_at: T(2) } },
      definition: {
        name: "Approval",
        nodes: [{ id: "start", type: "start" }, { id: "approve", type: "wait", name: "Publish?" }, { id: "end", type: "end" }],
        edges: [
          { from: "start", to: "approve" },
          { from: "approve", to: "end", branch: "resumed" },
        ],
      },
    };
    const socket = await renderRun({ ...SNAPSHOT, run });
    await screen.findByText("Run status: running");
    expect(screen.queryByRole("region", { name: "Waiting for a person" })).toBeNull();
    await act(async () => {
      socket.send({ seq: 4, type: "node_waiting", node_id: "approve", timestamp: T(3), data: { resume_url: link, timeout_at: T(59) } });
      socket.send({ seq: 5, type: "run_waiting", node_id: null, timestamp: T(3), data: {} });
    });
    const panel = await screen.findByRole("region", { name: "Waiting for a person" });
    expect((within(panel).getByLabelText("Resume link of Publish?") as HTMLInputElement).value).toBe(link);
    expect(within(panel).getByRole("link", { name: "Open page" }).getAttribute("href")).toBe(link);
    expect(panel.textContent).toContain("Times out at");
    expect(document.querySelector('[data-node-id="approve"]')?.getAttribute("data-status")).toBe("waiting");

    fireEvent.click(within(panel).getByRole("button", { name: "Approve Publish?" }));
    expect(await within(panel).findByText("Approved: the run goes on.")).toBeTruthy();
    expect(await requestsTo("POST", "/workflows/executions/r1/nodes/approve/resume")[0]?.json()).toEqual({ approved: true });
    expect((within(panel).getByRole("button", { name: "Reject Publish?" }) as HTMLButtonElement).disabled).toBe(true);

    await act(async () => {
      socket.send({ seq: 6, type: "node_completed", node_id: "approve", timestamp: T(4), data: { output: { approved: true }, branch: "resumed" } });
    });
    await waitFor(() => expect(screen.queryByRole("region", { name: "Waiting for a person" })).toBeNull());
  });

  it("says why an answer was refused (answered already elsewhere)", async () => {
    const handler = fakeApi.handler;
    fakeApi.handler = (request) =>
      new URL(request.url).pathname.endsWith("/nodes/check/resume")
        ? json({ detail: "wait node check was answered already" }, 410)
        : handler(request);
    const run = {
      ...SNAPSHOT.run,
      status: "waiting",
      node_states: { ...SNAPSHOT.run.node_states, check: { status: "waiting", attempts: 1, resume_url: "http://x/resume/t", timeout_at: null, title: "Ship it?" } },
    };
    await renderRun({ ...SNAPSHOT, run });
    const panel = await screen.findByRole("region", { name: "Waiting for a person" });
    expect(panel.textContent).toContain("Ship it?");
    expect(panel.textContent).toContain("No time limit");
    fireEvent.click(within(panel).getByRole("button", { name: "Reject Big?" }));
    expect((await within(panel).findByRole("alert")).textContent).toBe("Could not resume the step: wait node check was answered already");
  });

  it("shows a viewer that a step waits, without its link or the answers (the server leaves the link out)", async () => {
    const run = {
      ...SNAPSHOT.run,
      status: "waiting",
      node_states: { ...SNAPSHOT.run.node_states, check: { status: "waiting", attempts: 1, resumable: true, title: "Ship it?", timeout_at: null } },
    };
    await renderRun({ ...SNAPSHOT, run });
    const panel = await screen.findByRole("region", { name: "Waiting for a person" });
    expect(panel.textContent).toContain("Ship it?");
    expect(panel.textContent).toContain("Answering it needs a role that may run workflows.");
    expect(within(panel).queryByRole("button", { name: /Approve/ })).toBeNull();
    expect(within(panel).queryByRole("textbox")).toBeNull();
  });
});
