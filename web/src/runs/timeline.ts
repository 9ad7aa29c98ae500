// The Gantt rows of a run: one bar per node that started, on the run's time scale.
import type { NodeRunState, NodeStatus } from "./statuses";

export interface TimelineRow {
  id: string;
  status: NodeStatus;
  cached: boolean;
  /** Still under way: its bar ends at `now` and grows with the clock. */
  live: boolean;
  durationMs: number;
  /** When the bar starts, ms after the scale's origin. */
  startMs: number;
  /** Where the bar starts and how wide it is, in percent of the run's span. */
  offsetPct: number;
  widthPct: number;
}

export interface Timeline {
  rows: TimelineRow[];
  /** The span the bars are scaled to (run start to the latest end), ms. */
  spanMs: number;
}

const LIVE: ReadonlySet<NodeStatus> = new Set(["running", "retrying", "waiting"]);

function ms(iso: string | null | undefined): number | null {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/**
 * Bars for every node with a start time, ordered by start (definition order on ties).
 * A finished node spans started_at → finished_at (retries included); a live one ends at
 * `now`. The scale runs from `runStart` (else the first node's start) to the latest end.
 */
export function timelineRows(
  nodes: Readonly<Record<string, NodeRunState>>,
  runStart: string | null,
  now: number,
): Timeline {
  const spans: { id: string; node: NodeRunState; start: number; end: number; index: number }[] = [];
  Object.entries(nodes).forEach(([id, node], index) => {
    const start = ms(node.started_at);
    if (start === null) return;
    const live = LIVE.has(node.status);
    const end = live ? Math.max(now, start) : (ms(node.finished_at) ?? start + (node.latency_ms ?? 0));
    spans.push({ id, node, start, end: Math.max(end, start), index });
  });
  if (spans.length === 0) return { rows: [], spanMs: 0 };
  const origin = Math.min(ms(runStart) ?? Infinity, ...spans.map((s) => s.start));
  const last = Math.max(...spans.map((s) => s.end));
  const spanMs = Math.max(last - origin, 1);
  spans.sort((a, b) => a.start - b.start || a.index - b.index);
  return {
    spanMs,
    rows: spans.map(({ id, node, start, end }) => ({
      id,
      status: node.status,
      cached: node.cached,
      live: LIVE.has(node.status),
      durationMs: end - start,
      startMs: start - origin,
      offsetPct: ((start - origin) / spanMs) * 100,
      widthPct: ((end - start) / spanMs) * 100,
    })),
  };
}
