import { describe, expect, it } from "vitest";
import { UNAUTHORIZED_EVENT } from "../api/client";
import { type SocketLike, createRunStream } from "./stream";

class FakeSocket implements SocketLike {
  onopen: ((event: Event) => void) | null = null;
  onmessage: ((event: MessageEvent) => void) | null = null;
  onclose: ((event: CloseEvent) => void) | null = null;
  onerror: ((event: Event) => void) | null = null;
  closedWith: number | null = null;
  constructor(readonly url: string) {}
  close(code?: number) {
    this.closedWith = code ?? 1005;
  }
  send(message: unknown) {
    this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
  }
  serverClose(code: number, reason = "") {
    this.onclose?.({ code, reason } as CloseEvent);
  }
}

const T = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, "0")}+00:00`;

function snapshot(status: string, lastSeq: number, nodeStates: Record<string, unknown> = {}) {
  return {
    type: "snapshot",
    last_seq: lastSeq,
    run: {
      execution_id: "e1",
      status,
      node_states: nodeStates,
      definition: { name: "wf", nodes: [{ id: "start", type: "start" }, { id: "end", type: "end" }], edges: [] },
    },
  };
}

const event = (seq: number, type: string, node_id: string | null = null, data: Record<string, unknown> = {}) => ({
  seq,
  type,
  node_id,
  timestamp: T(seq),
  data,
});

function harness() {
  const sockets: FakeSocket[] = [];
  const frames: (() => void)[] = [];
  const timers: { callback: () => void; ms: number; cancelled: boolean }[] = [];
  const events = new EventTarget();
  let unauthorized = 0;
  events.addEventListener(UNAUTHORIZED_EVENT, () => (unauthorized += 1));
  const stream = createRunStream("e1", {
    openSocket: (url) => {
      const socket = new FakeSocket(url);
      sockets.push(socket);
      return socket;
    },
    location: { protocol: "http:", host: "dw.test" },
    nextFrame: (callback) => {
      frames.push(callback);
      return () => {
        const i = frames.indexOf(callback);
        if (i >= 0) frames.splice(i, 1);
      };
    },
    setTimer: (callback, ms) => {
      const timer = { callback, ms, cancelled: false };
      timers.push(timer);
      return () => (timer.cancelled = true);
    },
    events,
    random: () => 0.5,
  });
  let renders = 0;
  const unsubscribe = stream.subscribe(() => (renders += 1));
  const frame = () => frames.splice(0).forEach((f) => f());
  const fireTimers = () => timers.splice(0).forEach((t) => t.cancelled || t.callback());
  return {
    stream,
    sockets,
    frames,
    timers,
    frame,
    fireTimers,
    unsubscribe,
    get renders() {
      return renders;
    },
    get unauthorized() {
      return unauthorized;
    },
    last: () => sockets[sockets.length - 1]!,
  };
}

describe("createRunStream", () => {
  it("connects on the page's origin and folds everything that arrived in one frame into one update", () => {
    const h = harness();
    expect(h.last().url).toBe("ws://dw.test/ws/executions/e1?after=0&paged=true");
    h.last().send(snapshot("queued", 0));
    h.last().send(event(1, "run_started"));
    h.last().send(event(2, "node_started", "start", { attempt: 1 }));
    h.last().send(event(3, "node_completed", "start", { output: { a: 1 } }));
    const before = h.renders;
    expect(h.stream.getView().statuses).toBeNull(); // nothing folded until the frame
    expect(h.frames).toHaveLength(1); // one frame scheduled for the whole burst
    h.frame();
    expect(h.renders).toBe(before + 1);
    const view = h.stream.getView();
    expect(view.connection).toBe("open");
    expect(view.statuses?.nodes.start?.status).toBe("completed");
    expect(view.statuses?.lastSeq).toBe(3);
    expect(view.run?.definition?.name).toBe("wf");
  });

  it("reconnects after a drop, resuming after the last seq, with a growing delay", () => {
    const h = harness();
    h.last().send(snapshot("running", 4, { start: { status: "completed" } }));
    h.last().send(event(5, "node_started", "end", { attempt: 1 }));
    h.last().serverClose(1006);
    // What had arrived is folded before deciding (no frame needed).
    expect(h.stream.getView()).toMatchObject({ connection: "reconnecting", retryInMs: 500 });
    expect(h.stream.getView().statuses?.lastSeq).toBe(5);
    h.fireTimers();
    expect(h.sockets).toHaveLength(2);
    expect(h.last().url).toBe("ws://dw.test/ws/executions/e1?after=5&paged=true");
    // The server is still down: the next wait is longer.
    h.last().serverClose(1006);
    expect(h.timers[0]?.ms).toBe(1000);
    h.fireTimers();
    h.last().serverClose(1006);
    expect(h.timers[0]?.ms).toBe(2000);
    h.fireTimers();
    // Back: a new snapshot, the duplicate is ignored, then the run ends.
    h.last().send(snapshot("running", 6, { start: { status: "completed" }, end: { status: "running", attempts: 1 } }));
    h.last().send(event(6, "node_started", "end"));
    h.last().send(event(7, "node_completed", "end", { output: 1 }));
    h.last().send(event(8, "run_finished", null, { status: "success" }));
    h.last().serverClose(1000);
    const view = h.stream.getView();
    expect(view.connection).toBe("closed");
    expect(view.statuses).toMatchObject({ runStatus: "success", lastSeq: 8 });
    expect(view.statuses?.nodes.end?.attempts).toBe(1);
    expect(h.timers).toHaveLength(0);
    expect(h.sockets).toHaveLength(4);
  });

  it("stays closed for a finished run's snapshot followed by a normal close", () => {
    const h = harness();
    h.last().send(snapshot("success", 9, { start: { status: "completed" }, end: { status: "completed" } }));
    h.last().serverClose(1000);
    expect(h.stream.getView()).toMatchObject({ connection: "closed", error: null });
    expect(h.timers).toHaveLength(0);
  });

  it("restart connects again from the last seq (a retried run)", () => {
    const h = harness();
    h.last().send(snapshot("error", 9));
    h.last().serverClose(1000);
    h.stream.restart();
    expect(h.last().url).toBe("ws://dw.test/ws/executions/e1?after=9&paged=true");
    h.last().send(snapshot("queued", 10));
    h.frame();
    expect(h.stream.getView().statuses?.runStatus).toBe("queued");
    expect(h.stream.getView().connection).toBe("open");
  });

  it("sends a signed-out user to sign in (4401) and shows a refusal (4404) without retrying", () => {
    const h = harness();
    h.last().serverClose(4401, "not authenticated");
    expect(h.unauthorized).toBe(1);
    expect(h.timers).toHaveLength(0);
    const g = harness();
    g.last().serverClose(4404, "execution 'e1' not found");
    expect(g.stream.getView()).toMatchObject({ connection: "closed", error: "execution 'e1' not found" });
    expect(g.timers).toHaveLength(0);
  });

  it("closes the socket and cancels the pending reconnect when the last listener leaves", () => {
    const h = harness();
    h.last().send(snapshot("running", 1));
    const first = h.last();
    h.unsubscribe();
    expect(first.closedWith).toBe(1000);
    expect(first.onclose).toBeNull();
    // Subscribing again (StrictMode remount) resumes from what was folded.
    h.stream.subscribe(() => {});
    expect(h.last()).not.toBe(first);
    expect(h.last().url).toContain("after=1");
    h.last().serverClose(1006);
    h.stream.subscribe(() => {})(); // a second listener leaving changes nothing
    expect(h.timers.filter((t) => !t.cancelled)).toHaveLength(1);
  });

  it("ignores a message that is not JSON", () => {
    const h = harness();
    h.last().onmessage?.({ data: "not json" } as MessageEvent);
    h.last().send(snapshot("running", 0));
    h.frame();
    expect(h.stream.getView().statuses?.runStatus).toBe("running");
  });
});
