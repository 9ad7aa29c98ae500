import { describe, expect, it } from "vitest";
import {
  type RunEvent,
  type Snapshot,
  applyEvent,
  applyMessage,
  foldRun,
  fromSnapshot,
} from "./statuses";

const T = (s: number) => `2026-01-01T00:00:${String(s).padStart(2, "0")}+00:00`;

function snapshot(overrides: Partial<Snapshot["run"]> = {}, lastSeq = 0): Snapshot {
  return {
    type: "snapshot",
    last_seq: lastSeq,
    run: {
      execution_id: "e1",
      status: "queued",
      node_states: {},
      definition: { nodes: [{ id: "start" }, { id: "ai" }, { id: "end" }] },
      ...overrides,
    },
  };
}

let seq = 0;
function ev(type: string, node_id: string | null, data: Record<string, unknown> = {}, at = seq + 1): RunEvent {
  seq = Math.max(seq, at);
  return { seq: at, type, node_id, timestamp: T(at), data };
}

describe("fromSnapshot", () => {
  it("lists every node of the definition as pending before anything ran", () => {
    const state = fromSnapshot(snapshot());
    expect(state.runStatus).toBe("queued");
    expect(state.lastSeq).toBe(0);
    expect(Object.keys(state.nodes)).toEqual(["start", "ai", "end"]);
    expect(state.nodes.ai).toMatchObject({ status: "pending", attempts: 0, cached: false, tokens: "" });
  });

  it("takes stored node states and the run's last seq", () => {
    const state = fromSnapshot(
      snapshot(
        {
          status: "running",
          node_states: {
            start: {
              status: "completed",
              attempts: 1,
              cached: false,
              started_at: T(1),
              finished_at: T(2),
              output: { x: 1 },
            },
            ai: { status: "running", attempts: 2, started_at: T(3) },
          },
        },
        7,
      ),
    );
    expect(state.runStatus).toBe("running");
    expect(state.lastSeq).toBe(7);
    expect(state.nodes.start).toMatchObject({ status: "completed", finished_at: T(2), output: { x: 1 } });
    expect(state.nodes.ai).toMatchObject({ status: "running", attempts: 2, started_at: T(3) });
    expect(state.nodes.end?.status).toBe("pending");
  });
});

describe("applyEvent", () => {
  it("follows a run from start to success", () => {
    seq = 0;
    const state = foldRun(snapshot(), [
      ev("run_started", null, { workflow_id: "w" }),
      ev("node_started", "start", { type: "start", attempt: 1 }),
      ev("node_completed", "start", { output: { a: 1 }, cached: false, latency_ms: 1.5 }),
      ev("node_started", "ai", { type: "ai", attempt: 1 }),
      ev("log", "ai", { level: "info", message: "calling the model" }),
      ev("node_completed", "ai", { output: "hi", cached: true, latency_ms: 0.2 }),
      ev("node_started", "end", { type: "end", attempt: 1 }),
      ev("node_completed", "end", { output: "hi", cached: false, latency_ms: 0.1 }),
      ev("run_finished", null, { status: "success" }),
    ]);
    expect(state.runStatus).toBe("success");
    expect(state.lastSeq).toBe(9);
    expect(state.nodes.start).toMatchObject({
      status: "completed",
      attempts: 1,
      cached: false,
      started_at: T(2),
      finished_at: T(3),
      latency_ms: 1.5,
      output: { a: 1 },
    });
    expect(state.nodes.ai).toMatchObject({ status: "completed", cached: true, started_at: T(4), finished_at: T(6) });
  });

  it("counts attempts through retries and keeps the first attempt's start", () => {
    seq = 0;
    const state = foldRun(snapshot({ status: "running" }), [
      ev("node_started", "ai", { attempt: 1 }),
      ev("node_retrying", "ai", { attempt: 1, error: "HTTP 503", delay_seconds: 1 }),
    ]);
    expect(state.nodes.ai).toMatchObject({ status: "retrying", attempts: 1, error: "HTTP 503" });
    const after = foldRun(snapshot({ status: "running" }), [
      ev("node_started", "ai", { attempt: 1 }, 1),
      ev("node_retrying", "ai", { attempt: 1, error: "HTTP 503" }, 2),
      ev("node_started", "ai", { attempt: 2 }, 3),
      ev("node_failed", "ai", { attempt: 2, error: "HTTP 503", on_error: "fail" }, 4),
      ev("node_cancelled", "end", {}, 5),
      ev("run_finished", null, { status: "error", error: "node ai failed: HTTP 503" }, 6),
    ]);
    expect(after.nodes.ai).toMatchObject({
      status: "failed",
      attempts: 2,
      error: "HTTP 503",
      started_at: T(1),
      finished_at: T(4),
    });
    expect(after.nodes.end).toMatchObject({ status: "cancelled", finished_at: T(5) });
    expect(after.runStatus).toBe("error");
  });

  it("marks skipped nodes and a dead letter", () => {
    seq = 0;
    const state = foldRun(snapshot(), [
      ev("node_skipped", "end", { reason: "no active incoming edge" }),
      ev("run_failed", null, { error: "boom" }),
      ev("run_finished", null, { status: "error", error: "boom" }),
    ]);
    expect(state.nodes.end).toMatchObject({ status: "skipped", finished_at: T(1) });
    expect(state.deadLetter).toBe(true);
    expect(state.runStatus).toBe("error");
  });

  it("parks running nodes when the run waits and completes them when it resumes", () => {
    seq = 0;
    let state = foldRun(snapshot({ status: "running" }), [
      ev("node_started", "start", { attempt: 1 }),
      ev("log", "start", { level: "info", message: "waiting until later" }),
      ev("run_waiting", null, { wake_at: T(50) }),
    ]);
    expect(state.runStatus).toBe("waiting");
    expect(state.nodes.start?.status).toBe("waiting");
    expect(state.nodes.ai?.status).toBe("pending");
    state = applyEvent(state, ev("node_completed", "start", { output: null, cached: false, resumed: true }));
    expect(state.nodes.start).toMatchObject({ status: "completed", finished_at: T(4) });
  });

  it("appends token deltas without moving the seq, and restarts them on a new attempt", () => {
    seq = 0;
    let state = foldRun(snapshot({ status: "running" }), [ev("node_started", "ai", { attempt: 1 })]);
    state = applyEvent(state, { seq: 1, type: "token", node_id: "ai", timestamp: T(2), data: { text: "Hel" } });
    state = applyEvent(state, { seq: 1, type: "token", node_id: "ai", timestamp: T(2), data: { text: "lo" } });
    expect(state.nodes.ai?.tokens).toBe("Hello");
    expect(state.lastSeq).toBe(1);
    state = applyEvent(state, ev("node_retrying", "ai", { attempt: 1, error: "timeout" }, 2));
    // A token older than the last stored event belongs to what was already folded in.
    expect(applyEvent(state, { seq: 1, type: "token", node_id: "ai", timestamp: T(2), data: { text: "x" } })).toBe(state);
    state = applyEvent(state, ev("node_started", "ai", { attempt: 2 }, 3));
    expect(state.nodes.ai).toMatchObject({ tokens: "", attempts: 2, status: "running" });
  });

  it("ignores events it has already folded in (resume after a dropped connection)", () => {
    seq = 0;
    const events = [
      ev("run_started", null),
      ev("node_started", "start", { attempt: 1 }),
      ev("node_completed", "start", { output: 1, cached: false }),
    ];
    const once = foldRun(snapshot(), events);
    const twice = events.reduce(applyEvent, once);
    expect(twice).toBe(once);
    expect(applyEvent(once, { ...events[1]!, seq: 0 })).toBe(once);
  });

  it("creates nodes it has not seen (a retry with a newer definition) and ignores unknown types", () => {
    const state = fromSnapshot(snapshot());
    const next = applyEvent(state, { seq: 1, type: "node_started", node_id: "new", timestamp: T(1), data: {} });
    expect(next.nodes.new).toMatchObject({ status: "running", attempts: 1 });
    const later = applyEvent(next, { seq: 2, type: "something_new", node_id: "new", timestamp: T(2), data: {} });
    expect(later.nodes).toBe(next.nodes);
    expect(later.lastSeq).toBe(2);
  });

  it("does not mutate the state it is given", () => {
    const state = fromSnapshot(snapshot());
    const frozen = JSON.stringify(state);
    applyEvent(state, { seq: 1, type: "node_started", node_id: "ai", timestamp: T(1), data: { attempt: 1 } });
    expect(JSON.stringify(state)).toBe(frozen);
  });
});

describe("waiting for a person", () => {
  const URL = "http://flows.example/resume/tok123";
  it("takes a waiting node's resume link from the snapshot, and from node_waiting live", () => {
    const parked = fromSnapshot(
      snapshot({
        status: "waiting",
        node_states: {
          approve: { status: "waiting", resumable: true, resume_url: URL, timeout_at: T(9), title: "Publish?", message: "The draft" },
        },
      }),
    );
    expect(parked.nodes.approve).toMatchObject({ status: "waiting", wait: { resumeUrl: URL, timeoutAt: T(9), title: "Publish?", message: "The draft" } });

    seq = 0;
    let state = fromSnapshot(snapshot({ status: "running" }));
    state = applyEvent(state, ev("node_started", "ai"));
    state = applyEvent(state, ev("node_waiting", "ai", { resume_url: URL, timeout_at: null }));
    expect(state.nodes.ai).toMatchObject({ status: "waiting", wait: { resumeUrl: URL, timeoutAt: null, title: null } });
    // Answered: the node completes with the posted body and no longer waits.
    state = applyEvent(state, ev("node_completed", "ai", { output: { approved: true }, branch: "resumed" }));
    expect(state.nodes.ai).toMatchObject({ status: "completed", wait: null, output: { approved: true }, branch: "resumed" });
  });

  it("knows a node waits for a person when the server leaves its link out (a viewer)", () => {
    const viewer = fromSnapshot(snapshot({ node_states: { ai: { status: "waiting", resumable: true, title: "Publish?", timeout_at: null } } }));
    expect(viewer.nodes.ai?.wait).toEqual({ resumeUrl: null, timeoutAt: null, title: "Publish?", message: null });
    seq = 0;
    let state = fromSnapshot(snapshot({ status: "running" }));
    state = applyEvent(state, ev("node_started", "ai"));
    state = applyEvent(state, ev("node_waiting", "ai", { timeout_at: T(9) }));
    expect(state.nodes.ai?.wait).toEqual({ resumeUrl: null, timeoutAt: T(9), title: null, message: null });
  });

  it("leaves a delay's parked node without a link", () => {
    const state = fromSnapshot(snapshot({ node_states: { ai: { status: "waiting", wake_at: T(5) } } as never }));
    expect(state.nodes.ai?.wait).toBeNull();
  });
});

describe("applyMessage", () => {
  it("waits for the snapshot, then folds events; a reconnect's snapshot keeps streamed tokens", () => {
    expect(applyMessage(null, { seq: 1, type: "run_started", node_id: null, timestamp: T(1), data: {} })).toBeNull();
    let state = applyMessage(null, snapshot({ status: "running" }, 3));
    state = applyMessage(state, { seq: 3, type: "token", node_id: "ai", timestamp: T(4), data: { text: "par" } });
    expect(state?.nodes.ai?.tokens).toBe("par");
    // Reconnected with ?after=3: the server's new snapshot already holds seq 4 and 5.
    state = applyMessage(
      state,
      snapshot({ status: "running", node_states: { ai: { status: "running", attempts: 1 } } }, 5),
    );
    expect(state?.lastSeq).toBe(5);
    expect(state?.nodes.ai).toMatchObject({ status: "running", tokens: "par" });
    const same = applyMessage(state, { seq: 4, type: "node_started", node_id: "end", timestamp: T(4), data: {} });
    expect(same).toBe(state);
    state = applyMessage(state, { seq: 6, type: "node_completed", node_id: "ai", timestamp: T(6), data: { cached: false } });
    expect(state?.nodes.ai?.status).toBe("completed");
    expect(state?.lastSeq).toBe(6);
  });
});

describe("logs and run times", () => {
  it("splits the snapshot's logs by node and appends live lines worded as the server words them", () => {
    seq = 0;
    const state = foldRun(
      snapshot(
        {
          status: "running",
          start_time: T(1),
          logs: [
            { timestamp: T(1), node_id: null, level: "info", message: "Run started" },
            { timestamp: T(1), node_id: "start", level: "info", message: "Executing start node" },
          ],
        },
        2,
      ),
      [
        // Replayed (seq <= last_seq): already among the snapshot's logs.
        ev("node_started", "start", { type: "start", attempt: 1 }, 2),
        ev("node_started", "ai", { type: "ai-processor", attempt: 2 }, 3),
        ev("log", "ai", { level: "warning", message: "slow model" }, 4),
        { seq: 4, type: "token", node_id: "ai", timestamp: T(5), data: { text: "x" } },
        ev("node_completed", "ai", { cached: true, latency_ms: 1.5, branch: "true" }, 5),
        ev("run_finished", null, { status: "error", error: "boom" }, 6),
      ],
    );
    expect(state.nodes.start?.logs.map((l) => l.message)).toEqual(["Executing start node"]);
    expect(state.nodes.ai?.logs.map((l) => [l.level, l.message])).toEqual([
      ["info", "Executing ai-processor node (attempt 2)"],
      ["warning", "slow model"],
      ["info", "Completed in 1.5 ms (cached), took branch 'true'"],
    ]);
    expect(state.runLogs.map((l) => l.message)).toEqual([
      "Run started",
      "Run finished with status error: boom",
    ]);
    expect(state).toMatchObject({ startedAt: T(1), endedAt: T(6), error: "boom", runStatus: "error" });
  });

  it("says a node woken from a park completed, without a latency it does not have", () => {
    const state = applyMessage(applyMessage(null, snapshot({ status: "running", node_states: {} }, 1)),
      ev("node_completed", "wait", { cached: false, latency_ms: null, branch: "resumed", resumed: true }, 2),
    );
    expect(state?.nodes.wait?.logs.map((l) => l.message)).toEqual(["Completed, took branch 'resumed'"]);
  });

  it("drops streamed tokens of nodes a new snapshot no longer shows running (a retried run)", () => {
    let state = applyMessage(null, snapshot({ status: "running", node_states: { ai: { status: "running" } } }, 1));
    state = applyMessage(state, { seq: 1, type: "token", node_id: "ai", timestamp: T(2), data: { text: "old" } });
    state = applyMessage(state, snapshot({ status: "queued", node_states: { ai: { status: "pending" } } }, 3));
    expect(state?.nodes.ai?.tokens).toBe("");
  });
});
