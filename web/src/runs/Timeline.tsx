// The run's Gantt chart: one bar per node that started, on the run's time scale.
import { memo } from "react";
import { formatDuration } from "../canvas/NodeCard";
import { useNow } from "./clock";
import type { NodeRunState } from "./statuses";
import { timelineRows } from "./timeline";

interface TimelineProps {
  nodes: Readonly<Record<string, NodeRunState>>;
  runStart: string | null;
  /** Whether the run is still going (the clock only ticks then). */
  live: boolean;
  labels: Readonly<Record<string, string>>;
  selected: string | null;
  onSelect: (nodeId: string) => void;
}

function TimelineView({ nodes, runStart, live, labels, selected, onSelect }: TimelineProps) {
  const anyLive = live && Object.values(nodes).some((n) => n.status === "running" || n.status === "retrying");
  const now = useNow(anyLive);
  const { rows, spanMs } = timelineRows(nodes, runStart, now);
  return (
    <section className="run-timeline" aria-labelledby="run-timeline-title">
      <h2 id="run-timeline-title">Timeline</h2>
      {rows.length === 0 ? (
        <p className="muted">No node has started yet.</p>
      ) : (
        <>
          <div className="gantt-scale" aria-hidden="true">
            <span>0</span>
            <span>{formatDuration(spanMs)}</span>
          </div>
          <ol className="gantt">
            {rows.map((row) => {
              const label = labels[row.id] ?? row.id;
              const text = `${label}: ${formatDuration(row.durationMs)}${row.live ? " so far" : ""}${row.cached ? " (cached)" : ""}, ${row.status}`;
              return (
                <li key={row.id} className="gantt-row">
                  <button
                    type="button"
                    className="gantt-label link-button"
                    aria-pressed={selected === row.id}
                    onClick={() => onSelect(row.id)}
                    title={`Show the details of ${label}`}
                  >
                    {label}
                  </button>
                  <div className="gantt-track">
                    <div
                      role="img"
                      aria-label={text}
                      title={text}
                      className={`gantt-bar gantt-${row.status}${row.cached ? " gantt-cached" : ""}${row.live ? " gantt-live" : ""}`}
                      style={{ left: `${row.offsetPct}%`, width: `${row.widthPct}%` }}
                    />
                  </div>
                  <span className="gantt-duration">
                    {formatDuration(row.durationMs)}
                    {row.cached ? " · cached" : ""}
                  </span>
                </li>
              );
            })}
          </ol>
        </>
      )}
    </section>
  );
}

/** Memoised: the page re-renders on every stream frame, the chart only when its props change. */
export const Timeline = memo(TimelineView);
