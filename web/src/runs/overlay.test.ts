import { describe, expect, it } from "vitest";
import { type StepNode, toFlow } from "../canvas/definition";
import { nodeDurationMs, nodeOverlay, withOverlays } from "./overlay";
import { type NodeRunState, pendingNode } from "./statuses";

const node = (over: Partial<NodeRunState>): NodeRunState => ({ ...pendingNode(), ...over });

describe("nodeOverlay", () => {
  it("shows queued while the run goes on and pending once it ended", () => {
    expect(nodeOverlay(node({}), false).status).toBe("queued");
    expect(nodeOverlay(node({}), true).status).toBe("pending");
  });

  it("takes the duration from the span, else latency, and none while live", () => {
    const span = node({
      status: "completed",
      started_at: "2026-01-01T00:00:00Z",
      finished_at: "2026-01-01T00:00:01.5Z",
      latency_ms: 3,
    });
    expect(nodeDurationMs(span)).toBe(1500);
    expect(nodeDurationMs(node({ status: "completed", latency_ms: 3 }))).toBe(3);
    expect(nodeDurationMs(node({ status: "running", started_at: "2026-01-01T00:00:00Z" }))).toBeNull();
    const t = "2026-01-01T00:00:00Z";
    expect(nodeDurationMs(node({ status: "skipped", started_at: t, finished_at: t, latency_ms: 0 }))).toBeNull();
  });

  it("shows tokens only while the node runs", () => {
    expect(nodeOverlay(node({ status: "running", tokens: "Hel" }), false).tokens).toBe("Hel");
    expect(nodeOverlay(node({ status: "completed", tokens: "Hello" }), false).tokens).toBeUndefined();
  });
});

describe("withOverlays", () => {
  const { nodes } = toFlow({
    name: "w",
    nodes: [
      { id: "a", type: "start" },
      { id: "b", type: "end" },
    ],
    edges: [{ from: "a", to: "b" }],
  } as Parameters<typeof toFlow>[0]);

  it("replaces only the nodes whose overlay changed", () => {
    const first = withOverlays(nodes, { a: node({}), b: node({}) }, false);
    const second = withOverlays(first, { a: node({ status: "running", attempts: 1 }), b: node({}) }, false);
    expect(second).not.toBe(first);
    expect(second[1]).toBe(first[1]);
    expect(second[0]?.data.overlay).toMatchObject({ status: "running", attempts: 1 });
    // Nothing new: the very same array.
    expect(withOverlays(second, { a: node({ status: "running", attempts: 1 }), b: node({}) }, false)).toBe(second);
  });

  it("leaves nodes the run has no state for alone", () => {
    const out: StepNode[] = withOverlays(nodes, {}, false);
    expect(out).toBe(nodes);
  });
});
