import { describe, expect, it } from "vitest";
import { type EventPage, HISTORY_PAGE, applyHistoryPage, nextHistoryAfter } from "./history";
import { type RunEvent, type Snapshot, applyEvent, fromSnapshot } from "./statuses";
import { type SocketLike, createRunStream } from "./stream";

const T = (s: number) => `2026-01-01T00:00:${String(s % 60).padStart(2, "0")}+00:00`;

const event = (seq: number, type: string, node_id: string | null = null, data: Record<string, unknown> = {}): RunEvent => ({
  seq,
  type,
  node_id,
  timestamp: T(seq),
  data,
});

function pagedSnapshot(lastSeq: number, status = "running"): Snapshot {
  return {
    type: "snapshot",
    last_seq: lastSeq,
    paged: true,
    run: {
      execution_id: "e1",
      status,
      node_states: { a: { status: "completed" }, b: { status: "running" } } as unknown as Snapshot["run"]["node_states"],
      definition: { nodes: [{ id: "a" }, { id: "b" }] },
      logs: [],
    },
  };
}

/** Events 1..n of a run: run_started, then b, a, b, a… each started (even seq) and
 * completed (odd seq): seqs 2-3 are b's, 4-5 a's, 6-7 b's, and so on. */
function history(n: number): RunEvent[] {
  const events = [event(1, "run_started")];
  for (let seq = 2; seq <= n; seq += 1) {
    const node = seq % 4 < 2 ? "a" : "b";
    events.push(seq % 2 ? event(seq, "node_completed", node, { latency_ms: 1 }) : event(seq, "node_started", node, { type: "transformer" }));
  }
  return events;
}

function pageOf(events: RunEvent[], after: number, limit: number, upTo: number): EventPage {
  const found = events.filter((e) => e.seq > after && e.seq <= upTo);
  const page = found.slice(0, limit);
  return { events: page, next_after: found.length > limit ? page[page.length - 1]!.seq : null };
}

describe("a paged run's history", () => {
  it("starts with every event up to the snapshot to read, and none for a run without events", () => {
    const state = fromSnapshot(pagedSnapshot(7));
    expect(state.history).toEqual({ loadedSeq: 0, untilSeq: 7 });
    expect(nextHistoryAfter(state)).toBe(0);
    expect(fromSnapshot(pagedSnapshot(0)).history).toBeNull();
    // A stream without `paged` carries its logs in the snapshot: nothing to page.
    expect(fromSnapshot({ ...pagedSnapshot(7), paged: undefined }).history).toBeNull();
  });

  it("folds pages of log lines in seq order before the lines that arrived live meanwhile", () => {
    const events = history(9);
    let state = fromSnapshot(pagedSnapshot(7));
    // Live events after the snapshot arrive before any page.
    state = applyEvent(state, events[7]!); // seq 8: a started
    state = applyEvent(state, events[8]!); // seq 9: a completed
    expect(state.nodes.a?.logs.map((l) => l.seq)).toEqual([8, 9]);

    state = applyHistoryPage(state, pageOf(events, 0, 3, 7));
    expect(state.history).toEqual({ loadedSeq: 3, untilSeq: 7 });
    expect(nextHistoryAfter(state)).toBe(3);
    expect(state.runLogs.map((l) => l.message)).toEqual(["Run started"]);
    expect(state.nodes.b?.logs.map((l) => l.seq)).toEqual([2, 3]);

    state = applyHistoryPage(state, pageOf(events, 3, 3, 7));
    state = applyHistoryPage(state, pageOf(events, 6, 3, 7));
    expect(nextHistoryAfter(state)).toBeNull();
    expect(state.nodes.a?.logs.map((l) => l.seq)).toEqual([4, 5, 8, 9]);
    expect(state.nodes.b?.logs[0]?.message).toBe("Executing transformer node");
    expect(state.nodes.b?.logs.map((l) => l.seq)).toEqual([2, 3, 6, 7]);

    // A page read twice, or events streamed live, are not folded again.
    const again = applyHistoryPage(state, pageOf(events, 0, 9, 9));
    expect(again.nodes.a?.logs.map((l) => l.seq)).toEqual([4, 5, 8, 9]);
  });

  it("keeps the lines and the history on a paged reconnection", () => {
    const events = history(7);
    let state = fromSnapshot(pagedSnapshot(7));
    state = applyHistoryPage(state, pageOf(events, 0, 3, 7));
    const reconnected = fromSnapshot(pagedSnapshot(9), state);
    expect(reconnected.history).toEqual({ loadedSeq: 3, untilSeq: 7 });
    expect(reconnected.nodes.b?.logs.map((l) => l.seq)).toEqual([2, 3]);
    expect(reconnected.runLogs).toHaveLength(1);
    expect(reconnected.lastSeq).toBe(9);
  });

  it("is read page by page by the stream: the first page at once, the next ones on demand", async () => {
    const events = history(1200);
    const asked: number[] = [];
    let socket: SocketLike & { send(message: unknown): void } = null!;
    const frames: (() => void)[] = [];
    const stream = createRunStream("e1", {
      openSocket: () => {
        socket = {
          onopen: null,
          onmessage: null,
          onclose: null,
          onerror: null,
          close() {},
          send(message: unknown) {
            this.onmessage?.({ data: JSON.stringify(message) } as MessageEvent);
          },
        };
        return socket;
      },
      location: { protocol: "http:", host: "dw.test" },
      nextFrame: (callback) => {
        frames.push(callback);
        return () => undefined;
      },
      setTimer: () => () => undefined,
      events: undefined,
      random: () => 0.5,
      fetchEvents: async (executionId, after, limit) => {
        expect(executionId).toBe("e1");
        asked.push(after);
        return pageOf(events, after, limit, 1200);
      },
    });
    stream.subscribe(() => undefined);
    socket.send(pagedSnapshot(1200, "success"));
    frames.splice(0).forEach((f) => f());
    expect(stream.getView().historyLoading).toBe(true);
    await Promise.resolve();
    await Promise.resolve();
    expect(asked).toEqual([0]);
    expect(stream.getView().statuses?.history).toEqual({ loadedSeq: HISTORY_PAGE, untilSeq: 1200 });
    expect(stream.getView().historyLoading).toBe(false);

    stream.loadHistory();
    stream.loadHistory(); // one page at a time
    await Promise.resolve();
    await Promise.resolve();
    stream.loadHistory();
    await Promise.resolve();
    await Promise.resolve();
    expect(asked).toEqual([0, HISTORY_PAGE, 2 * HISTORY_PAGE]);
    const done = stream.getView().statuses!;
    expect(nextHistoryAfter(done)).toBeNull();
    const lines = [...done.runLogs, ...done.nodes.a!.logs, ...done.nodes.b!.logs];
    expect(lines).toHaveLength(1200);
    stream.loadHistory();
    expect(asked).toHaveLength(3);
  });
});
