import { describe, expect, it } from "vitest";
import { createApiClient } from "../src/api/client";
import type { RunStatuses } from "../src/runs/statuses";
import { clientFromEnv, describeError, handleRun, type OpenSocket } from "./handle-run";

/** A WebSocket the test drives: it records its URL and plays messages and closes. */
class FakeSocket {
  onmessage: ((message: MessageEvent) => void) | null = null;
  onclose: ((close: CloseEvent) => void) | null = null;
  constructor(readonly url: string) {}
  send(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }
  close(code: number, reason = "") {
    this.onclose?.({ code, reason } as CloseEvent);
  }
}

function server(answers: Record<string, { status: number; body: unknown }>) {
  const requests: { method: string; url: string; body: unknown; auth: string | null }[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    const text = await request.text();
    requests.push({
      method: request.method,
      url: request.url,
      body: text ? JSON.parse(text) : null,
      auth: request.headers.get("Authorization"),
    });
    const answer = answers[`${request.method} ${new URL(request.url).pathname}`];
    if (!answer) return new Response(JSON.stringify({ detail: "Not found" }), { status: 404 });
    return new Response(JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { requests, fetch: fetch as typeof globalThis.fetch };
}

const canvas = {
  name: "Greeter",
  nodes: [
    { id: "start", type: "start", position: { x: 0, y: 10 }, data: {} },
    { id: "check", type: "condition", position: { x: 200, y: 10 }, data: { config: { expression: "true" } } },
    { id: "end", type: "end", position: { x: 400.5, y: 10 }, data: {} },
  ],
  edges: [
    { source: "start", target: "check" },
    { source: "check", target: "end", sourceHandle: "true" },
  ],
};

const snapshot = {
  type: "snapshot",
  run: { execution_id: "run-1", status: "queued", node_states: {}, definition: { nodes: canvas.nodes } },
  last_seq: 0,
};
const event = (seq: number, type: string, nodeId: string | null, data: object = {}) => ({
  seq,
  type,
  node_id: nodeId,
  timestamp: `2030-01-01T00:00:0${seq}Z`,
  data,
});

describe("handleRun", () => {
  it("saves with positions, runs async, follows the WebSocket and resumes after a drop", async () => {
    const { requests, fetch } = server({
      "PUT /workflows/wf-1": { status: 200, body: {} },
      "POST /workflows/wf-1/execute": {
        status: 202,
        body: { execution_id: "run-1", workflow_id: "wf-1", status: "queued", message: "", started_at: "" },
      },
    });
    const client = createApiClient({ baseUrl: "http://ductwork.test", apiKey: "dw_key", fetch });
    const sockets: FakeSocket[] = [];
    const open: OpenSocket = (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket as unknown as WebSocket;
    };
    const seen: RunStatuses[] = [];
    const done = handleRun(client, "wf-1", canvas, { name: "Ada" }, {
      socketBase: "ws://ductwork.test",
      openSocket: open,
      onStatus: (statuses) => seen.push(statuses),
    });
    await expect.poll(() => sockets.length).toBe(1);

    expect(requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      "PUT http://ductwork.test/workflows/wf-1",
      "POST http://ductwork.test/workflows/wf-1/execute",
    ]);
    expect(requests.every((r) => r.auth === "Bearer dw_key")).toBe(true);
    const saved = requests[0]?.body as { nodes: { position: unknown }[]; edges: unknown[] };
    expect(saved.nodes.map((n) => n.position)).toEqual(canvas.nodes.map((n) => n.position));
    expect(saved.edges).toEqual([
      { from: "start", to: "check" },
      { from: "check", to: "end", branch: "true" },
    ]);
    expect(requests[1]?.body).toEqual({ inputs: { name: "Ada" }, async_execution: true });

    const first = sockets[0]!;
    expect(first.url).toBe("ws://ductwork.test/ws/executions/run-1?after=0");
    first.send(snapshot);
    first.send(event(1, "run_started", null));
    first.send(event(2, "node_started", "start"));
    first.close(1006); // dropped: reconnect after the last seq seen
    await expect.poll(() => sockets.length, { timeout: 3000 }).toBe(2);
    const second = sockets[1]!;
    expect(second.url).toBe("ws://ductwork.test/ws/executions/run-1?after=2");
    second.send({ ...snapshot, run: { ...snapshot.run, status: "running" }, last_seq: 2 });
    second.send(event(3, "node_completed", "start"));
    second.send(event(4, "run_finished", null, { status: "success" }));
    second.close(1000);

    const final = await done;
    expect(final.runStatus).toBe("success");
    expect(final.nodes.start?.status).toBe("completed");
    expect(final.nodes.end?.status).toBe("pending");
    expect(seen.map((s) => s.lastSeq)).toEqual([0, 1, 2, 2, 3, 4]);
  });

  it("stops at a refused save and names the node and field", async () => {
    const problem = {
      message: "workflow is invalid",
      detail: [{ node_id: "check", field: "config.expression", message: "is required" }],
    };
    const { requests, fetch } = server({ "PUT /workflows/wf-1": { status: 422, body: problem } });
    const client = createApiClient({ baseUrl: "http://ductwork.test", apiKey: "k", fetch });
    const run = handleRun(client, "wf-1", canvas, {}, { socketBase: "ws://x", onStatus: () => {} });
    await expect(run).rejects.toThrow(
      "save failed: workflow is invalid: check.config.expression: is required",
    );
    expect(requests).toHaveLength(1);
  });

  it("gives up on an application close code such as 4404 (unknown run)", async () => {
    const { fetch } = server({
      "PUT /workflows/wf-1": { status: 200, body: {} },
      "POST /workflows/wf-1/execute": { status: 202, body: { execution_id: "gone" } },
    });
    const client = createApiClient({ baseUrl: "http://ductwork.test", apiKey: "k", fetch });
    const sockets: FakeSocket[] = [];
    const run = handleRun(client, "wf-1", canvas, {}, {
      socketBase: "ws://x",
      onStatus: () => {},
      openSocket: (url) => {
        const socket = new FakeSocket(url);
        sockets.push(socket);
        return socket as unknown as WebSocket;
      },
    });
    await expect.poll(() => sockets.length).toBe(1);
    sockets[0]!.close(4404, "execution gone not found");
    await expect(run).rejects.toThrow("4404 execution gone not found");
  });
});

describe("the example's helpers", () => {
  it("reads the key from DUCTWORK_API_KEY and refuses to run without one", () => {
    expect(() => clientFromEnv({})).toThrow("DUCTWORK_API_KEY");
    expect(clientFromEnv({ DUCTWORK_API_KEY: "dw_x" })).toBeTruthy();
  });

  it("describes an error body", () => {
    expect(describeError({ detail: "Not found" })).toBe("Not found");
    expect(describeError(null)).toBe("the request failed");
  });
});
