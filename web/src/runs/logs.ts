// Log lines of live events, worded as the server words the stored ones.
//
// A snapshot carries the run's `logs` as src/ductwork/views.py `log_message` renders
// them; events that arrive afterwards are rendered here the same way, so a node's log
// reads alike whether it was loaded or streamed.
import type { LogLine, RunEvent } from "./statuses";

const FIXED: Record<string, string> = {
  run_started: "Run started",
  node_skipped: "Skipped: no active incoming edge",
  node_cancelled: "Cancelled",
};

/** Python's str() of a value as the server's f-strings show it (None, 'repr' of text). */
function py(value: unknown): string {
  if (value === undefined || value === null) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  return String(value);
}

function pyRepr(value: unknown): string {
  return typeof value === "string" ? `'${value}'` : py(value);
}

/** The (level, message) line of an event, or null for events that are not log lines (tokens). */
export function logLine(event: RunEvent): LogLine | null {
  const data = event.data;
  const line = (level: string, message: string): LogLine => ({
    timestamp: event.timestamp,
    node_id: event.node_id,
    level,
    message,
  });
  switch (event.type) {
    case "log":
      return line(String(data.level ?? "info"), String(data.message ?? ""));
    case "node_started": {
      const attempt = data.attempt ?? 1;
      const suffix = typeof attempt === "number" && attempt > 1 ? ` (attempt ${attempt})` : "";
      return line("info", `Executing ${String(data.type ?? "")} node${suffix}`);
    }
    case "node_completed": {
      const cached = data.cached ? " (cached)" : "";
      const branch =
        data.branch !== undefined && data.branch !== null ? `, took branch ${pyRepr(data.branch)}` : "";
      // A node woken from a park (delay, wait) has no latency of its own to report.
      const took =
        data.latency_ms !== undefined && data.latency_ms !== null ? ` in ${py(data.latency_ms)} ms` : "";
      return line("info", `Completed${took}${cached}${branch}`);
    }
    case "node_failed":
      return line("error", `Failed after ${py(data.attempt)} attempt(s): ${py(data.error)}`);
    case "node_retrying":
      return line(
        "warning",
        `Attempt ${py(data.attempt)} failed: ${py(data.error)}; retrying in ${py(data.delay_seconds)} s`,
      );
    case "run_waiting":
      return line("info", `Run waiting until ${py(data.wake_at)}`);
    case "run_failed":
      return line("error", `Run failed for good (dead letter): ${py(data.error)}`);
    case "run_finished": {
      const error = data.error ? `: ${py(data.error)}` : "";
      return line(data.status === "error" ? "error" : "info", `Run finished with status ${py(data.status)}${error}`);
    }
    default:
      return event.type in FIXED ? line("info", FIXED[event.type] ?? "") : null;
  }
}
