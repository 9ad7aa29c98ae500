import { describe, expect, it } from "vitest";
import { type NodeRunState, pendingNode } from "./statuses";
import { timelineRows } from "./timeline";

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const node = (over: Partial<NodeRunState>): NodeRunState => ({ ...pendingNode(), ...over });

describe("timelineRows", () => {
  it("scales settled spans to the run's span and orders them by start", () => {
    const { rows, spanMs } = timelineRows(
      {
        end: node({ status: "completed", started_at: at(6), finished_at: at(10) }),
        start: node({ status: "completed", started_at: at(0), finished_at: at(2), cached: true }),
        later: node({ status: "pending" }),
        skipped: node({ status: "skipped", finished_at: at(5) }),
      },
      at(0),
      Date.parse(at(99)),
    );
    expect(spanMs).toBe(10_000);
    expect(rows.map((r) => r.id)).toEqual(["start", "end"]);
    expect(rows[0]).toMatchObject({ offsetPct: 0, widthPct: 20, durationMs: 2000, cached: true, live: false });
    expect(rows[1]).toMatchObject({ offsetPct: 60, widthPct: 40, durationMs: 4000, startMs: 6000, status: "completed" });
  });

  it("grows a running bar to now, and the scale with it", () => {
    const nodes = {
      a: node({ status: "completed", started_at: at(1), finished_at: at(2) }),
      b: node({ status: "running", started_at: at(2) }),
    };
    const early = timelineRows(nodes, at(0), Date.parse(at(4)));
    expect(early.spanMs).toBe(4000);
    expect(early.rows[1]).toMatchObject({ id: "b", live: true, durationMs: 2000, offsetPct: 50, widthPct: 50 });
    const later = timelineRows(nodes, at(0), Date.parse(at(10)));
    expect(later.rows[1]).toMatchObject({ durationMs: 8000, offsetPct: 20, widthPct: 80 });
  });

  it("starts the scale at the first node when the run's start is unknown, and survives zero-length runs", () => {
    const { rows, spanMs } = timelineRows(
      { a: node({ status: "completed", started_at: at(3), finished_at: at(3) }) },
      null,
      0,
    );
    expect(spanMs).toBe(1);
    expect(rows[0]).toMatchObject({ offsetPct: 0, widthPct: 0, durationMs: 0 });
  });

  it("falls back to latency when a settled node has no end", () => {
    const { rows } = timelineRows({ a: node({ status: "failed", started_at: at(0), latency_ms: 500 }) }, at(0), 0);
    expect(rows[0]).toMatchObject({ durationMs: 500, live: false });
  });
});
