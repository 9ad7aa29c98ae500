// A long run's earlier events, read a page at a time (GET .../events/page).
//
// The run view opens its stream with `?paged=true` (src/ductwork/api/live.py): the
// snapshot carries the node states but no logs, and the stream brings only what follows
// the snapshot's `last_seq`. The log lines of the events up to it come from pages folded
// in here, so a run with 10,000 events shows its canvas at once and its logs page by page.
import { logLine } from "./logs";
import type { LogLine, RunEvent, RunStatuses } from "./statuses";

/** Events per page: the server's largest page is 1,000. */
export const HISTORY_PAGE = 500;

/** A page as the server answers it. */
export interface EventPage {
  events: RunEvent[];
  next_after: number | null;
}

/** Where the next page starts (`after`), or null when the history is read. */
export function nextHistoryAfter(state: RunStatuses | null): number | null {
  const history = state?.history;
  if (!history || history.loadedSeq >= history.untilSeq) return null;
  return history.loadedSeq;
}

/** `lines` with `added` merged in, in seq order (lines without a seq keep their place first). */
function merged(lines: LogLine[], added: LogLine[]): LogLine[] {
  if (added.length === 0) return lines;
  const all = [...lines, ...added];
  // A stable sort: equal seqs (none in practice) keep their order.
  return all.sort((a, b) => (a.seq ?? -Infinity) - (b.seq ?? -Infinity));
}

/**
 * The state with a page of earlier events folded in: their log lines only (the snapshot
 * holds the node states they led to), and the history moved past them. Events outside
 * the history (already streamed live, or a page read twice) are left out.
 */
export function applyHistoryPage(state: RunStatuses, page: EventPage): RunStatuses {
  const history = state.history;
  if (!history) return state;
  const byNode = new Map<string, LogLine[]>();
  const runLines: LogLine[] = [];
  let loaded = history.loadedSeq;
  for (const event of page.events) {
    if (event.seq <= history.loadedSeq || event.seq > history.untilSeq) continue;
    loaded = Math.max(loaded, event.seq);
    const read = logLine(event);
    if (read === null) continue;
    const line = { ...read, seq: event.seq };
    if (event.node_id === null || !(event.node_id in state.nodes)) runLines.push(line);
    else byNode.set(event.node_id, [...(byNode.get(event.node_id) ?? []), line]);
  }
  // No next page: the server had nothing more up to now, so the history is complete.
  if (page.next_after === null) loaded = history.untilSeq;
  const nodes = { ...state.nodes };
  for (const [id, lines] of byNode) {
    const node = nodes[id];
    if (node) nodes[id] = { ...node, logs: merged(node.logs, lines) };
  }
  return {
    ...state,
    nodes,
    runLogs: merged(state.runLogs, runLines),
    history: { ...history, loadedSeq: Math.min(loaded, history.untilSeq) },
  };
}
