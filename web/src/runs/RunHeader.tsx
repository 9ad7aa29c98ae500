// The run's header: workflow, status, times, trigger, error, and the Cancel/Retry actions.
import { Link } from "react-router";
import { isFinished } from "../runStatus";
import { formatDuration, formatTime, useNow } from "../time";
import { RunOriginView } from "../triggers/RunOrigin";
import { ParentLink } from "./RunFamily";
import type { Connection, RunRecord } from "./stream";
import type { RunStatuses } from "./statuses";
import { formatCost, formatTokens, runUsage } from "./usage";

interface RunHeaderProps {
  executionId: string;
  run: RunRecord | null;
  statuses: RunStatuses | null;
  connection: Connection;
  retryInMs: number | null;
  onCancel: () => void;
  onRetry: () => void;
  cancelling: boolean;
  retrying: boolean;
  /** The last failed action's message. */
  actionError: string | null;
  /** Ask to delete the run (the page confirms first); absent: no Delete button. */
  onDelete?: () => void;
}

function text(value: unknown): string | null {
  return typeof value === "string" && value !== "" ? value : null;
}

// Only a failed or cancelled run can be retried; a successful one is finished for good.
const RETRYABLE = new Set(["error", "cancelled"]);

function connectionNote(connection: Connection, retryInMs: number | null, finished: boolean): string {
  switch (connection) {
    case "connecting":
      return "Connecting…";
    case "open":
      return finished ? "" : "Live";
    case "reconnecting":
      return `Connection lost; reconnecting${retryInMs === null ? "" : ` in ${Math.ceil(retryInMs / 1000)} s`}…`;
    case "closed":
      return "";
  }
}

/** Workflow name and version, "Run status: …", times, trigger, error, actions. */
export function RunHeader(props: RunHeaderProps) {
  const { executionId, run, statuses, connection, retryInMs } = props;
  const status = statuses?.runStatus ?? run?.status ?? "loading";
  const finished = status === "success" || status === "error" || status === "cancelled";
  const startedAt = statuses?.startedAt ?? run?.start_time ?? null;
  const endedAt = statuses?.endedAt ?? run?.end_time ?? null;
  const now = useNow(!finished && startedAt !== null, 1000);
  const start = startedAt ? Date.parse(startedAt) : NaN;
  const end = endedAt ? Date.parse(endedAt) : finished ? NaN : now;
  const duration = Number.isNaN(start) || Number.isNaN(end) ? null : Math.max(end - start, 0);
  const error = statuses?.error ?? run?.error ?? null;
  const note = connectionNote(connection, retryInMs, finished);
  const parentId = text(run?.parent_execution_id);
  const parentNode = text(run?.parent_node_id);
  const depth = run?.depth ?? 0;
  const queuedReason = status === "queued" ? text(run?.queued_reason) : null;
  const usage = runUsage(statuses?.usage ?? run?.usage);
  return (
    <header className="run-header">
      <div className="run-title">
        <h1>
          {run?.definition?.name ?? "Run"}
          {run ? <span className="muted run-version"> v{run.workflow_version}</span> : null}
        </h1>
        <p role="status" className={`run-status status-${status}`}>
          Run status: {status}
        </p>
        {queuedReason ? <span className="muted run-queued-reason">{queuedReason}</span> : null}
        {statuses?.deadLetter || run?.dead_letter ? (
          <span className="badge badge-dead" title="The engine gave up on this run after repeated failures">
            dead letter
          </span>
        ) : null}
        {note ? <span className="muted run-connection">{note}</span> : null}
        <div className="run-actions">
          {run ? (
            <Link className="button secondary" to={`/workflows/${encodeURIComponent(run.workflow_id)}`}>
              Open in editor
            </Link>
          ) : null}
          <button
            type="button"
            className="danger"
            onClick={props.onCancel}
            disabled={isFinished(status) || props.cancelling}
          >
            Cancel run
          </button>
          <button type="button" onClick={props.onRetry} disabled={!RETRYABLE.has(status) || props.retrying}>
            Retry run
          </button>
          {props.onDelete ? (
            <button type="button" className="secondary" onClick={props.onDelete} disabled={!isFinished(status)} title="Only a finished run can be deleted">
              Delete run
            </button>
          ) : null}
        </div>
      </div>
      <dl className="facts run-facts">
        <dt>Run</dt>
        <dd>
          <code>{executionId}</code>
        </dd>
        <dt>Created</dt>
        <dd>{formatTime(run?.created_at)}</dd>
        <dt>Started</dt>
        <dd>{formatTime(startedAt)}</dd>
        <dt>Ended</dt>
        <dd>{formatTime(endedAt)}</dd>
        <dt>Duration</dt>
        <dd>{duration === null ? "—" : formatDuration(duration)}</dd>
        {parentId ? (
          <>
            <dt>Parent run</dt>
            <dd>
              <ParentLink parentId={parentId} nodeId={parentNode} />
              {depth > 1 ? <span className="muted"> (depth {depth})</span> : null}
            </dd>
          </>
        ) : null}
        {usage ? (
          <>
            <dt>Tokens</dt>
            <dd aria-label="Run tokens">
              {formatTokens(usage.total_tokens)} ({formatTokens(usage.prompt_tokens)} prompt, {formatTokens(usage.completion_tokens)} completion) in {usage.calls} call{usage.calls === 1 ? "" : "s"}
            </dd>
            <dt>Cost</dt>
            <dd aria-label="Run cost">
              {formatCost(usage.cost)}
              {usage.unpriced_calls > 0 ? <span className="muted"> ({usage.unpriced_calls} unpriced call{usage.unpriced_calls === 1 ? "" : "s"} not counted)</span> : null}
              {Object.keys(usage.by_model).length > 1 ? (
                <span className="muted">
                  {" "}
                  ·{" "}
                  {Object.entries(usage.by_model)
                    .map(([model, entry]) => `${model}: ${formatCost(entry.cost)}`)
                    .join(", ")}
                </span>
              ) : null}
            </dd>
          </>
        ) : null}
        {run?.trigger ? (
          <>
            <dt>Started by</dt>
            <dd>
              <RunOriginView trigger={run.trigger} />
            </dd>
          </>
        ) : null}
      </dl>
      {error ? (
        <p className="error run-error" role="alert">
          Run error: {error}
        </p>
      ) : null}
      {props.actionError ? (
        <p className="error" role="alert">
          {props.actionError}
        </p>
      ) : null}
    </header>
  );
}
