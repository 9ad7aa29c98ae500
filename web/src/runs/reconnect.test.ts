import { describe, expect, it } from "vitest";
import { BACKOFF_MAX_MS, backoffDelay, isFinished, onClose, streamUrl } from "./reconnect";

const mid = () => 0.5; // no jitter

describe("backoffDelay", () => {
  it("doubles from 0.5 s up to 15 s", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffDelay(n, mid))).toEqual([
      500, 1000, 2000, 4000, 8000, 15000, 15000, 15000,
    ]);
  });

  it("jitters by at most 20 % and never past the cap", () => {
    expect(backoffDelay(1, () => 0)).toBe(800);
    expect(backoffDelay(1, () => 1)).toBe(1200);
    expect(backoffDelay(10, () => 1)).toBe(BACKOFF_MAX_MS);
  });
});

describe("onClose", () => {
  const base = { reason: "", runFinished: false, failures: 0 };

  it("stops once the run finished and the server closed normally", () => {
    expect(onClose({ ...base, code: 1000, runFinished: true })).toEqual({ kind: "done" });
    // The close frame itself was lost, but run_finished had arrived.
    expect(onClose({ ...base, code: 1006, runFinished: true })).toEqual({ kind: "done" });
  });

  it("reconnects after a drop with a growing delay", () => {
    expect(onClose({ ...base, code: 1006 }, mid)).toEqual({ kind: "reconnect", delayMs: 500 });
    expect(onClose({ ...base, code: 1001, failures: 3 }, mid)).toEqual({ kind: "reconnect", delayMs: 4000 });
    // A normal close before the run ended (a server restarting) is a drop too.
    expect(onClose({ ...base, code: 1000 }, mid).kind).toBe("reconnect");
  });

  it("sends a signed-out user to sign in and gives up on refusals", () => {
    expect(onClose({ ...base, code: 4401 })).toEqual({ kind: "unauthorized" });
    expect(onClose({ ...base, code: 4403, reason: "needs read" })).toEqual({
      kind: "fatal",
      message: "You may not watch this run: needs read",
    });
    expect(onClose({ ...base, code: 4404, reason: "execution 'x' not found" })).toEqual({
      kind: "fatal",
      message: "execution 'x' not found",
    });
    expect(onClose({ ...base, code: 4404, runFinished: true }).kind).toBe("fatal");
    expect(onClose({ ...base, code: 1008 }).kind).toBe("fatal");
  });
});

describe("streamUrl", () => {
  it("uses the page's host and ws/wss by scheme, resuming after the last seq", () => {
    expect(streamUrl({ protocol: "http:", host: "127.0.0.1:8000" }, "e 1", 7)).toBe(
      "ws://127.0.0.1:8000/ws/executions/e%201?after=7&paged=true",
    );
    expect(streamUrl({ protocol: "https:", host: "dw.example" }, "e1", -1)).toBe(
      "wss://dw.example/ws/executions/e1?after=0&paged=true",
    );
  });
});

describe("isFinished", () => {
  it("knows the final run statuses", () => {
    expect(["success", "error", "cancelled"].every(isFinished)).toBe(true);
    expect(["queued", "running", "waiting", undefined].some(isFinished)).toBe(false);
  });
});
