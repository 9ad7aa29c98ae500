// The run's Gantt chart: one bar per node that started, on the run's time scale.
//
// Bars are placed in milliseconds through CSS variables (`--start`, `--duration`)
// against the chart's `--span`: when the span grows with the clock, only the chart's
// own style changes, and a row re-renders only when its own numbers do (the running
// ones). A 300-node run stays cheap to redraw four times a second.
import { type CSSProperties, memo, useState } from "react";
import { formatDuration } from "../time";
import { useNow } from "../time";
import type { NodeRunState, NodeStatus } from "./statuses";
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

interface RowProps {
  id: string;
  label: string;
  status: NodeStatus;
  cached: boolean;
  live: boolean;
  startMs: number;
  durationMs: number;
  selected: boolean;
  onSelect: (nodeId: string) => void;
}

const GanttRow = memo(function GanttRow(props: RowProps) {
  const { id, label, status, cached, live, startMs, durationMs, selected, onSelect } = props;
  const text = `${label}: ${formatDuration(durationMs)}${live ? " so far" : ""}${cached ? " (cached)" : ""}, ${status}`;
  return (
    <li className="gantt-row">
      <button
        type="button"
        className="gantt-label link-button"
        aria-pressed={selected}
        onClick={() => onSelect(id)}
        title={`Show the details of ${label}`}
      >
        {label}
      </button>
      <div className="gantt-track">
        <div
          role="img"
          aria-label={text}
          title={text}
          className={`gantt-bar gantt-${status}${cached ? " gantt-cached" : ""}${live ? " gantt-live" : ""}`}
          style={{ "--start": startMs, "--duration": durationMs } as CSSProperties}
        />
      </div>
      <span className="gantt-duration">
        {formatDuration(durationMs)}
        {cached ? " · cached" : ""}
      </span>
    </li>
  );
});

/** Rows drawn at first, and added per "show more": a 10,000-node run's chart would
 * otherwise put 10,000 rows in the page, and every layout the canvas asks for pays for them. */
export const TIMELINE_ROWS = 200;

function TimelineView({ nodes, runStart, live, labels, selected, onSelect }: TimelineProps) {
  const anyLive = live && Object.values(nodes).some((n) => n.status === "running" || n.status === "retrying");
  const now = useNow(anyLive);
  const [shown, setShown] = useState(TIMELINE_ROWS);
  const { rows: allRows, spanMs } = timelineRows(nodes, runStart, now);
  const rows = allRows.length > shown ? allRows.slice(0, shown) : allRows;
  return (
    <section className="run-timeline" aria-labelledby="run-timeline-title">
      <h2 id="run-timeline-title">Timeline</h2>
      {rows.length === 0 ? (
        <p className="muted">No node has started yet.</p>
      ) : (
        <div style={{ "--span": spanMs } as CSSProperties}>
          <div className="gantt-scale" aria-hidden="true">
            <span>0</span>
            <span>{formatDuration(spanMs)}</span>
          </div>
          <ol className="gantt">
            {rows.map((row) => (
              <GanttRow
                key={row.id}
                id={row.id}
                label={labels[row.id] ?? row.id}
                status={row.status}
                cached={row.cached}
                live={row.live}
                startMs={row.startMs}
                durationMs={row.durationMs}
                selected={selected === row.id}
                onSelect={onSelect}
              />
            ))}
          </ol>
          {allRows.length > rows.length ? (
            <button type="button" className="gantt-more" onClick={() => setShown((n) => n + TIMELINE_ROWS)}>
              Show {Math.min(TIMELINE_ROWS, allRows.length - rows.length).toLocaleString()} more of{" "}
              {allRows.length.toLocaleString()} nodes
            </button>
          ) : null}
        </div>
      )}
    </section>
  );
}

/** Memoised: the page re-renders on every stream frame, the chart only when its props change. */
export const Timeline = memo(TimelineView);
