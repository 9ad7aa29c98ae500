// The selected node of a run: input (derived), output, error, attempts, timings, logs
// and, while it runs, the AI text streaming in.
import { formatDuration } from "../time";
import { type NodeSpec, type WorkflowDefinition, parentOf } from "../canvas/definition";
import { formatTime } from "../time";
import { type DerivedInput, nodeInput } from "./input";
import { JsonBlock } from "./JsonBlock";
import { nodeDurationMs } from "./overlay";
import type { NodeRunState } from "./statuses";
import { formatCost, formatTokens, nodeUsage } from "./usage";

interface NodeDetailsProps {
  definition: WorkflowDefinition;
  states: Readonly<Record<string, NodeRunState>>;
  variables: unknown;
  nodeId: string | null;
  runFinished: boolean;
  onClose: () => void;
  /** The item picked on each loop (a body node's details are that item's). */
  items?: Readonly<Record<string, number | null>>;
}

function inputCaption(input: DerivedInput, labelOf: (id: string) => string): string {
  switch (input.kind) {
    case "run-inputs":
      return "The run's inputs (an entry node).";
    case "single":
      return `The output of ${labelOf(input.source)}.`;
    case "merged":
      return `The outputs of ${input.sources.map(labelOf).join(", ")}, by node id.`;
    case "none":
      return "None: no incoming edge is active (yet).";
  }
}

/** The "Node details" region: a hint until a node is selected. */
export function NodeDetails({ definition, states, variables, nodeId, runFinished, onClose, items = {} }: NodeDetailsProps) {
  const specs = new Map<string, NodeSpec>((definition.nodes ?? []).map((n) => [n.id, n]));
  const labelOf = (id: string) => specs.get(id)?.name || id;
  const spec = nodeId === null ? undefined : specs.get(nodeId);
  const state = nodeId === null ? undefined : states[nodeId];
  return (
    <section className="run-details" aria-labelledby="run-details-title">
      <div className="run-details-head">
        <h2 id="run-details-title">Node details</h2>
        {nodeId !== null ? (
          <button type="button" className="secondary" onClick={onClose} aria-label="Close node details">
            Close
          </button>
        ) : null}
      </div>
      {spec && parentOf(spec) !== null ? (
        <p className="muted small run-item-note">
          {(() => {
            const loop = parentOf(spec)!;
            const item = items[loop] ?? null;
            return item === null
              ? `In the body of ${labelOf(loop)}: pick an item on the loop to see this node's state for it.`
              : `Item ${item} of ${labelOf(loop)}.`;
          })()}
        </p>
      ) : null}
      {nodeId === null || !state ? (
        <p className="muted">Select a node on the canvas or in the timeline to see its input, output and logs.</p>
      ) : (
        <Details
          nodeId={nodeId}
          spec={spec}
          state={state}
          input={nodeInput(definition, states, variables, nodeId)}
          labelOf={labelOf}
          runFinished={runFinished}
        />
      )}
    </section>
  );
}

function Details({
  nodeId,
  spec,
  state,
  input,
  labelOf,
  runFinished,
}: {
  nodeId: string;
  spec: NodeSpec | undefined;
  state: NodeRunState;
  input: DerivedInput;
  labelOf: (id: string) => string;
  runFinished: boolean;
}) {
  const status = state.status === "pending" && !runFinished ? "queued" : state.status;
  const duration = nodeDurationMs(state);
  const live = state.status === "running" || state.status === "retrying";
  const settled = state.status === "completed" || state.status === "failed";
  const usage = nodeUsage(state.meta ?? {});
  const bodyEntry = spec !== undefined && parentOf(spec) !== null && input.kind === "run-inputs";
  return (
    <div className="run-details-body">
      <p className="run-details-title">
        <strong>{labelOf(nodeId)}</strong> <span className="muted">{spec?.type ?? "unknown type"}</span>{" "}
        <span className={`status status-${status}`}>{status}</span>
        {state.cached ? <span className="badge badge-cached">cached</span> : null}
      </p>
      <dl className="facts">
        <dt>Attempts</dt>
        <dd>{state.attempts}</dd>
        <dt>Started</dt>
        <dd>{formatTime(state.started_at)}</dd>
        <dt>Finished</dt>
        <dd>{formatTime(state.finished_at)}</dd>
        <dt>Duration</dt>
        <dd>{duration === null ? "—" : formatDuration(duration)}</dd>
        {state.latency_ms !== null ? (
          <>
            <dt>Latency</dt>
            <dd>{formatDuration(state.latency_ms)}</dd>
          </>
        ) : null}
        {usage ? (
          <>
            <dt>Tokens</dt>
            <dd aria-label="Tokens">
              {formatTokens(usage.total_tokens)} ({formatTokens(usage.prompt_tokens)} prompt, {formatTokens(usage.completion_tokens)} completion)
              {usage.calls > 1 ? `, ${usage.calls} calls` : ""}
            </dd>
            <dt>Cost</dt>
            <dd>
              {formatCost(usage.cost)}
              {usage.model ? <span className="muted"> ({usage.model})</span> : null}
            </dd>
          </>
        ) : null}
        {state.branch !== null ? (
          <>
            <dt>Branch taken</dt>
            <dd>{state.branch}</dd>
          </>
        ) : null}
      </dl>
      {state.error ? (
        <>
          <h3>Error</h3>
          <pre className="error run-error-text">{state.error}</pre>
        </>
      ) : null}
      {state.tokens && live ? (
        <>
          <h3>Streaming</h3>
          <pre className="run-tokens" aria-label={`Text streaming from ${labelOf(nodeId)}`}>
            {state.tokens}
          </pre>
        </>
      ) : null}
      <h3>Input</h3>
      {bodyEntry ? (
        // A body node without a body predecessor gets its loop's item, which no state holds.
        <p className="muted small">The item of {labelOf(parentOf(spec!)!)} this node ran for.</p>
      ) : (
        <>
          <p className="muted small">{inputCaption(input, labelOf)}</p>
          {input.kind === "none" ? null : <JsonBlock value={input.value} label={`Input of ${labelOf(nodeId)}`} />}
        </>
      )}
      <h3>Output</h3>
      {settled || state.output !== null ? (
        <JsonBlock value={state.output} label={`Output of ${labelOf(nodeId)}`} />
      ) : (
        <p className="muted small">No output yet.</p>
      )}
      {spec?.config && Object.keys(spec.config).length > 0 ? (
        <details>
          <summary>Config</summary>
          <JsonBlock value={spec.config} label={`Config of ${labelOf(nodeId)}`} />
        </details>
      ) : null}
      <h3>Logs</h3>
      {state.logs.length === 0 ? (
        <p className="muted small">No log lines.</p>
      ) : (
        <ol className="run-logs" aria-label={`Logs of ${labelOf(nodeId)}`}>
          {state.logs.map((line, index) => (
            <li key={index} className={`log-${line.level}`}>
              <time dateTime={line.timestamp}>{new Date(line.timestamp).toLocaleTimeString()}</time>{" "}
              <span className="log-level">{line.level}</span> {line.message}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
