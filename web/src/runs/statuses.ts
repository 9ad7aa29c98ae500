// Per-node live status of a run, folded from the live stream (pure: no I/O, no clocks).
//
// The stream (WebSocket /ws/executions/{id}?after=N, see src/ductwork/api/live.py) sends
// a snapshot `{type: "snapshot", run, last_seq}` first, then events
// `{seq, type, node_id, timestamp, data}`. A client that reconnects passes its last seq
// as `after` and folds the new snapshot and events over what it has: stored events with
// `seq <= lastSeq` are already in the state and are ignored. `token` events are not
// stored: they carry the seq of the last stored event, so they are taken when
// `seq >= lastSeq` and never advance it.
import { RUN_STATUSES as ALL_RUN_STATUSES, type RunStatus } from "../runStatus";
import { logLine } from "./logs";

export type NodeStatus =
  | "pending"
  | "running"
  | "retrying"
  | "waiting"
  | "completed"
  | "failed"
  | "skipped"
  | "cancelled";

export type { RunStatus };

export type EventType =
  | "run_started"
  | "node_started"
  | "node_completed"
  | "node_failed"
  | "node_skipped"
  | "node_retrying"
  | "node_cancelled"
  | "token"
  | "log"
  | "run_waiting"
  | "node_waiting"
  | "run_failed"
  | "run_finished";

export interface RunEvent {
  seq: number;
  type: EventType | (string & {});
  node_id: string | null;
  timestamp: string;
  data: Record<string, unknown>;
}

/** A `node_states` entry as the API shows it (only the fields folded here). */
export interface NodeStateView {
  status: string;
  output?: unknown;
  error?: string | null;
  cached?: boolean;
  latency_ms?: number | null;
  attempts?: number;
  started_at?: string | null;
  finished_at?: string | null;
  branch?: string;
  /** A wait node's metadata while it waits to be resumed (src/ductwork/nodes/wait.py). */
  resumable?: boolean;
  resume_url?: string | null;
  timeout_at?: string | null;
  title?: string | null;
  message?: string | null;
}

/** One line of a run's `logs` (src/ductwork/views.py `logs_of`). */
export interface LogLine {
  timestamp: string;
  node_id: string | null;
  level: string;
  message: string;
  /** The event's seq, for lines read from events (live, or a page of them): keeps a
   * node's lines in order when an earlier page arrives after later live lines. */
  seq?: number;
}

/** The run part of a snapshot (GET /workflows/executions/{id} plus its definition). */
export interface RunView {
  execution_id?: string;
  status: string;
  node_states: Record<string, NodeStateView>;
  definition?: { nodes?: { id: string }[] };
  dead_letter?: boolean | null;
  start_time?: string | null;
  end_time?: string | null;
  error?: string | null;
  logs?: LogLine[];
  usage?: unknown;
}

export interface Snapshot {
  type: "snapshot";
  run: RunView;
  last_seq: number;
  /** The stream was opened with `?paged=true`: no `logs`; page the events up to `last_seq`. */
  paged?: boolean;
}

/** The events before a paged stream's snapshot: read up to `loadedSeq` of `untilSeq`. */
export interface EventHistory {
  loadedSeq: number;
  untilSeq: number;
}

export type StreamMessage = Snapshot | RunEvent;

export interface NodeRunState {
  status: NodeStatus;
  attempts: number;
  cached: boolean;
  started_at: string | null;
  finished_at: string | null;
  /** Streamed AI text of the current attempt (token deltas, joined). */
  tokens: string;
  error: string | null;
  latency_ms: number | null;
  output: unknown;
  branch: string | null;
  /** This node's log lines: the snapshot's, then the live ones. */
  logs: LogLine[];
  /** While it waits for a person (a `wait` node): its resume link and what it asks. */
  wait: WaitInfo | null;
  /**
   * The node's metadata from its state (the keys beyond the known ones, e.g. `usage`:
   * an AI node's tokens and cost; a loop's item count), updated by `node_completed`'s
   * `usage`.
   */
  meta: Record<string, unknown>;
}

/**
 * What a node waiting to be resumed shows: its single-use link (null for a principal
 * that may not resume runs: the server leaves it out), deadline, title and message.
 */
export interface WaitInfo {
  resumeUrl: string | null;
  timeoutAt: string | null;
  title: string | null;
  message: string | null;
}

export interface RunStatuses {
  runStatus: RunStatus;
  /** Set by `run_failed`: the engine gave up on the run (a dead letter). */
  deadLetter: boolean;
  nodes: Record<string, NodeRunState>;
  /** The last stored event folded in: send it as `?after=` when reconnecting. */
  lastSeq: number;
  startedAt: string | null;
  endedAt: string | null;
  /** The run's error once it ended with one. */
  error: string | null;
  /** Log lines of the run itself (no node). */
  runLogs: LogLine[];
  /** The run's token usage and cost (RunUsage.dump) as last reported: snapshot, then `run_finished`. */
  usage: unknown;
  /** A paged stream's earlier events still to read for their log lines (null: none). */
  history: EventHistory | null;
}

const NODE_STATUSES: ReadonlySet<string> = new Set<NodeStatus>([
  "pending",
  "running",
  "retrying",
  "waiting",
  "completed",
  "failed",
  "skipped",
  "cancelled",
]);
const RUN_STATUSES: ReadonlySet<string> = new Set<string>(ALL_RUN_STATUSES);

export function pendingNode(): NodeRunState {
  return {
    status: "pending",
    attempts: 0,
    cached: false,
    started_at: null,
    finished_at: null,
    tokens: "",
    error: null,
    latency_ms: null,
    output: null,
    branch: null,
    logs: [],
    wait: null,
    meta: {},
  };
}

/** The NodeStateView keys folded into NodeRunState's own fields (the rest is `meta`). */
const KNOWN_STATE_KEYS = new Set([
  "status",
  "output",
  "error",
  "cached",
  "latency_ms",
  "attempts",
  "started_at",
  "finished_at",
  "branch",
]);

function metaOf(view: Record<string, unknown>): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(view)) if (!KNOWN_STATE_KEYS.has(key)) meta[key] = value;
  // A server that nests its metadata (`meta: {...}`) is read the same way.
  const nested = view.meta;
  if (nested && typeof nested === "object" && !Array.isArray(nested)) Object.assign(meta, nested);
  return meta;
}

/**
 * The wait for a person a node's state or `node_waiting` event describes; null for a
 * node that waits for nothing but time (a delay). A state says so by `resumable` (or its
 * link), a `node_waiting` event by being one (`event`).
 */
function waitInfo(status: NodeStatus, data: Record<string, unknown>, previous: WaitInfo | null = null, event = false): WaitInfo | null {
  if (status !== "waiting") return null;
  const resumeUrl = str(data.resume_url) ?? previous?.resumeUrl ?? null;
  if (!event && resumeUrl === null && data.resumable !== true) return null;
  return {
    resumeUrl,
    timeoutAt: "timeout_at" in data ? str(data.timeout_at) : (previous?.timeoutAt ?? null),
    title: str(data.title) ?? previous?.title ?? null,
    message: str(data.message) ?? previous?.message ?? null,
  };
}

function nodeStatus(value: unknown): NodeStatus {
  return typeof value === "string" && NODE_STATUSES.has(value) ? (value as NodeStatus) : "pending";
}

function runStatus(value: unknown, fallback: RunStatus): RunStatus {
  return typeof value === "string" && RUN_STATUSES.has(value) ? (value as RunStatus) : fallback;
}

function str(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/**
 * The state a snapshot describes. Folded over `previous` (a reconnect), it replaces
 * every stored fact but keeps streamed tokens, which no snapshot carries.
 */
export function fromSnapshot(snapshot: Snapshot, previous?: RunStatuses): RunStatuses {
  const nodes: Record<string, NodeRunState> = {};
  for (const node of snapshot.run.definition?.nodes ?? []) nodes[node.id] = pendingNode();
  for (const [id, view] of Object.entries(snapshot.run.node_states ?? {})) {
    const status = nodeStatus(view.status);
    nodes[id] = {
      status,
      attempts: view.attempts ?? 0,
      cached: view.cached ?? false,
      started_at: view.started_at ?? null,
      finished_at: view.finished_at ?? null,
      tokens: "",
      error: view.error ?? null,
      latency_ms: view.latency_ms ?? null,
      output: view.output ?? null,
      branch: view.branch ?? null,
      logs: [],
      wait: waitInfo(status, view as unknown as Record<string, unknown>),
      meta: metaOf(view as unknown as Record<string, unknown>),
    };
  }
  const runLogs: LogLine[] = [];
  for (const line of snapshot.run.logs ?? []) {
    const node = line.node_id === null ? undefined : nodes[line.node_id];
    if (node) node.logs.push(line);
    else runLogs.push(line);
  }
  let history: EventHistory | null = null;
  if (snapshot.paged) {
    // No logs in a paged snapshot: a reconnection keeps the lines it has; a first one
    // has every event up to `last_seq` to page through.
    if (previous) {
      for (const [id, node] of Object.entries(nodes)) node.logs = previous.nodes[id]?.logs ?? [];
      runLogs.push(...previous.runLogs);
      history = previous.history;
    } else if (snapshot.last_seq > 0) {
      history = { loadedSeq: 0, untilSeq: snapshot.last_seq };
    }
  }
  if (previous) {
    for (const [id, node] of Object.entries(nodes)) {
      const tokens = previous.nodes[id]?.tokens;
      // Only an attempt still under way continues its stream (a retried run starts over).
      if (tokens && (node.status === "running" || node.status === "retrying")) nodes[id] = { ...node, tokens };
    }
  }
  return {
    runStatus: runStatus(snapshot.run.status, "queued"),
    deadLetter: snapshot.run.dead_letter ?? false,
    nodes,
    lastSeq: Math.max(snapshot.last_seq, 0),
    startedAt: snapshot.run.start_time ?? null,
    endedAt: snapshot.run.end_time ?? null,
    error: snapshot.run.error ?? null,
    runLogs,
    usage: snapshot.run.usage ?? null,
    history,
  };
}

function updateNode(
  state: RunStatuses,
  nodeId: string | null,
  change: (node: NodeRunState) => NodeRunState,
): Record<string, NodeRunState> {
  if (nodeId === null) return state.nodes;
  return { ...state.nodes, [nodeId]: change(state.nodes[nodeId] ?? pendingNode()) };
}

/** The state after one event; `state` itself when the event is already folded in. */
export function applyEvent(state: RunStatuses, event: RunEvent): RunStatuses {
  const next = applyFact(state, event);
  if (next === state || event.type === "token") return next;
  const read = logLine(event);
  if (read === null) return next;
  const line = { ...read, seq: event.seq };
  if (event.node_id === null) return { ...next, runLogs: [...next.runLogs, line] };
  return { ...next, nodes: updateNode(next, event.node_id, (n) => ({ ...n, logs: [...n.logs, line] })) };
}

function applyFact(state: RunStatuses, event: RunEvent): RunStatuses {
  const { data, node_id: nodeId, timestamp } = event;
  if (event.type === "token") {
    if (event.seq < state.lastSeq || nodeId === null) return state;
    const text = str(data.text) ?? "";
    return { ...state, nodes: updateNode(state, nodeId, (n) => ({ ...n, tokens: n.tokens + text })) };
  }
  if (event.seq <= state.lastSeq) return state;
  const next: RunStatuses = { ...state, lastSeq: event.seq };
  switch (event.type) {
    case "run_started":
      return { ...next, runStatus: "running", startedAt: state.startedAt ?? timestamp, endedAt: null, error: null };
    case "run_waiting":
      // The run parks only when no node task is left: nodes still "running" are parked.
      return {
        ...next,
        runStatus: "waiting",
        nodes: Object.fromEntries(
          Object.entries(state.nodes).map(([id, n]) => [
            id,
            n.status === "running" ? { ...n, status: "waiting" as const } : n,
          ]),
        ),
      };
    case "run_failed":
      return { ...next, deadLetter: true };
    case "node_waiting":
      return {
        ...next,
        nodes: updateNode(state, nodeId, (n) => ({ ...n, status: "waiting", wait: waitInfo("waiting", data, n.wait, true) })),
      };
    case "run_finished":
      return {
        ...next,
        runStatus: runStatus(data.status, state.runStatus),
        endedAt: timestamp,
        error: str(data.error),
        usage: "usage" in data ? data.usage : state.usage,
      };
    case "node_started":
      return {
        ...next,
        runStatus: "running",
        nodes: updateNode(state, nodeId, (n) => ({
          ...n,
          status: "running",
          attempts: num(data.attempt) ?? n.attempts + 1,
          // The first attempt's start, as the server keeps it (retries add to the span).
          started_at: n.status === "retrying" ? (n.started_at ?? timestamp) : timestamp,
          finished_at: null,
          tokens: "",
          error: null,
          cached: false,
        })),
      };
    case "node_completed":
      return {
        ...next,
        nodes: updateNode(state, nodeId, (n) => ({
          ...n,
          status: "completed",
          wait: null,
          cached: data.cached === true,
          latency_ms: num(data.latency_ms) ?? n.latency_ms,
          output: "output" in data ? data.output : n.output,
          branch: str(data.branch),
          error: null,
          finished_at: timestamp,
          meta: data.usage && typeof data.usage === "object" ? { ...n.meta, usage: data.usage } : n.meta,
        })),
      };
    case "node_failed":
      return {
        ...next,
        nodes: updateNode(state, nodeId, (n) => ({
          ...n,
          status: "failed",
          wait: null,
          attempts: num(data.attempt) ?? n.attempts,
          error: str(data.error),
          finished_at: timestamp,
        })),
      };
    case "node_retrying":
      return {
        ...next,
        nodes: updateNode(state, nodeId, (n) => ({
          ...n,
          status: "retrying",
          attempts: num(data.attempt) ?? n.attempts,
          error: str(data.error),
        })),
      };
    case "node_skipped":
      return {
        ...next,
        nodes: updateNode(state, nodeId, (n) => ({ ...n, status: "skipped", wait: null, finished_at: timestamp })),
      };
    case "node_cancelled":
      return {
        ...next,
        nodes: updateNode(state, nodeId, (n) => ({
          ...n,
          status: "cancelled",
          wait: null,
          finished_at: timestamp,
        })),
      };
    default:
      // log lines and types this client does not know yet: only the seq moves.
      return next;
  }
}

/** Fold one stream message (snapshot or event) into the state (null before the snapshot). */
export function applyMessage(state: RunStatuses | null, message: StreamMessage): RunStatuses | null {
  if (message.type === "snapshot") return fromSnapshot(message as Snapshot, state ?? undefined);
  if (state === null) return null; // events before a snapshot cannot be placed
  return applyEvent(state, message as RunEvent);
}

/** Fold a whole stream: a snapshot, then events. */
export function foldRun(snapshot: Snapshot, events: Iterable<RunEvent>): RunStatuses {
  let state = fromSnapshot(snapshot);
  for (const event of events) state = applyEvent(state, event);
  return state;
}
