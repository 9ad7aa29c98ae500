// When and how the run stream reconnects (pure: the socket code in stream.ts asks here).
//
// The server (src/ductwork/api/live.py, src/ductwork/api/guard.py) closes the socket
// with 1000 after `run_finished` (or right after the snapshot of a finished run),
// 4401 when nobody is signed in, 4403 when the caller may not read runs and 4404 for
// an unknown run. Anything else before the run finished is a dropped connection: try
// again, resuming after the last stored event folded in.

export const CLOSE_NORMAL = 1000;
export const CLOSE_POLICY = 1008;
export const CLOSE_UNAUTHENTICATED = 4401;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_NOT_FOUND = 4404;

/** Reconnect delays: 0.5 s doubling to at most 15 s. */
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 15_000;

export type CloseOutcome =
  /** The run is over and everything was received: stay closed. */
  | { kind: "done" }
  /** Dropped: connect again after `delayMs`. */
  | { kind: "reconnect"; delayMs: number }
  /** Not signed in: go to the sign-in page. */
  | { kind: "unauthorized" }
  /** The server refused for good (forbidden, unknown run): show why. */
  | { kind: "fatal"; message: string };

/**
 * The wait before reconnect number `failures` (0 for the first try after a drop that
 * followed a working connection). Jitter (±20 % from `random`) keeps many tabs that
 * lost the same server from reconnecting in lockstep.
 */
export function backoffDelay(failures: number, random: () => number = Math.random): number {
  if (failures <= 0) return Math.round(BACKOFF_BASE_MS * (0.8 + 0.4 * random()));
  const raw = Math.min(BACKOFF_BASE_MS * 2 ** Math.min(failures, 16), BACKOFF_MAX_MS);
  return Math.round(Math.min(raw * (0.8 + 0.4 * random()), BACKOFF_MAX_MS));
}

export interface CloseInfo {
  code: number;
  reason: string;
  /** Whether the folded state shows the run ended (success, error, cancelled). */
  runFinished: boolean;
  /** Connection attempts in a row that ended before any message arrived. */
  failures: number;
}

/** What to do after the socket closed. */
export function onClose(info: CloseInfo, random: () => number = Math.random): CloseOutcome {
  const { code, reason } = info;
  if (code === CLOSE_UNAUTHENTICATED) return { kind: "unauthorized" };
  if (code === CLOSE_FORBIDDEN) {
    return { kind: "fatal", message: `You may not watch this run${reason ? `: ${reason}` : "."}` };
  }
  if (code === CLOSE_NOT_FOUND) return { kind: "fatal", message: reason || "There is no run with this id." };
  if (code === CLOSE_POLICY || (code >= 4000 && code < 5000)) {
    return { kind: "fatal", message: `The server closed the live stream (${code})${reason ? `: ${reason}` : ""}.` };
  }
  // A drop after the last event of a finished run loses nothing.
  if (info.runFinished) return { kind: "done" };
  return { kind: "reconnect", delayMs: backoffDelay(info.failures, random) };
}

/** The run's WebSocket URL on the page's origin, resuming after `lastSeq`. */
export function streamUrl(location: Pick<Location, "protocol" | "host">, executionId: string, lastSeq: number): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  // paged: the snapshot without logs, and a first connection only streams what follows
  // it; the run view pages the earlier events (history.ts).
  return `${scheme}//${location.host}/ws/executions/${encodeURIComponent(executionId)}?after=${Math.max(0, lastSeq)}&paged=true`;
}

export { isFinished } from "../runStatus";
