// The run view (/ui/runs/:executionId): the workflow's canvas with each node's live
// status, the selected node's details, a timeline, and Cancel / Retry.
//
// Everything about the run comes from the live stream (useRunStream): its snapshot is
// the run record with the definition and logs, its events move the statuses. A finished
// run is its snapshot alone; a dropped connection resumes from the last seq.
import { useCallback, useEffect, useMemo, useState } from "react";
import { useNavigate } from "react-router";
import type { WorkflowDefinition } from "../canvas/definition";
import type { CanvasActions } from "../canvas/canvasContext";
import { loopProgress, statesForItems } from "./loops";
import { isFinished } from "./reconnect";
import { NodeDetails } from "./NodeDetails";
import { ConfirmDialog } from "../lists/ConfirmDialog";
import { useCancelRun, useDeleteRun, useNodeTypes, useRetryRun } from "./queries";
import { ChildRuns } from "./RunFamily";
import { RunCanvas } from "./RunCanvas";
import { RunHeader } from "./RunHeader";
import type { EventHistory } from "./statuses";
import { useRunStream } from "./stream";
import { Timeline } from "./Timeline";
import { WaitingPanel } from "./WaitingPanel";
import "./runs.css";

const NO_NODE_TYPES = {};

/** Keeps one definition object while its content is the same (every reconnect sends a copy). */
function useStableDefinition(definition: WorkflowDefinition | undefined): WorkflowDefinition | undefined {
  const key = definition ? JSON.stringify(definition) : "";
  // Memoised on the content (the key), not the object.
  return useMemo(() => definition, [key]);
}

/** How much of a long run's earlier events has been read for their logs, and "load more". */
function HistoryStatus({
  history,
  loading,
  error,
  onLoadMore,
}: {
  history: EventHistory | null;
  loading: boolean;
  error: string | null;
  onLoadMore: () => void;
}) {
  if (!history || (history.loadedSeq >= history.untilSeq && !error)) return null;
  return (
    <div className="run-history" role="status">
      <span className="muted">
        Logs read for {history.loadedSeq.toLocaleString()} of {history.untilSeq.toLocaleString()} events.
      </span>{" "}
      <button type="button" onClick={onLoadMore} disabled={loading}>
        {loading ? "Loading logs…" : "Load more logs"}
      </button>
      {error ? <span className="error"> {error}</span> : null}
    </div>
  );
}

export function RunPage({ executionId }: { executionId: string }) {
  const stream = useRunStream(executionId);
  const { statuses, run, restart } = stream;
  const nodeTypes = useNodeTypes();
  const cancel = useCancelRun(executionId);
  const retry = useRetryRun(executionId);
  const remove = useDeleteRun(executionId);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const navigate = useNavigate();
  const [selected, setSelected] = useState<string | null>(null);
  const definition = useStableDefinition(run?.definition);
  const runFinished = isFinished(statuses?.runStatus);

  // Loops: the item picked on each loop; its body nodes show that item's states.
  const [items, setItems] = useState<Record<string, number | null>>({});
  const rawStates = statuses?.nodes;
  const loops = useMemo(() => (definition && rawStates ? loopProgress(definition, rawStates, items) : {}), [definition, rawStates, items]);
  const shownStates = useMemo(
    () => (definition && rawStates ? statesForItems(definition, rawStates, items) : rawStates),
    [definition, rawStates, items],
  );
  const itemActions: CanvasActions = useMemo(
    () => ({
      itemOf: (loopId: string) => items[loopId] ?? null,
      pickItem: (loopId: string, index: number | null) => setItems((current) => ({ ...current, [loopId]: index })),
    }),
    [items],
  );

  const labels = useMemo(
    () => Object.fromEntries((definition?.nodes ?? []).map((n) => [n.id, n.name || n.id])),
    [definition],
  );
  const select = useCallback((nodeId: string) => setSelected(nodeId), []);
  const labelOf = useCallback((nodeId: string) => labels[nodeId] ?? nodeId, [labels]);

  // After a retry of this run, the status on screen is the old one until the restarted
  // stream brings news (a later seq): until then Retry stays disabled, or a second click
  // would be refused with a 409.
  const [retriedAtSeq, setRetriedAtSeq] = useState<number | null>(null);
  const lastSeq = statuses?.lastSeq ?? 0;
  useEffect(() => {
    if (retriedAtSeq !== null && lastSeq > retriedAtSeq) setRetriedAtSeq(null);
  }, [lastSeq, retriedAtSeq]);

  const onRetry = () => {
    cancel.reset();
    const seqBefore = lastSeq;
    retry.mutate(undefined, {
      onSuccess: (answer) => {
        // Today's API re-queues the same run; a server that answers a new run id is followed.
        if (answer.execution_id && answer.execution_id !== executionId) {
          navigate(`/runs/${encodeURIComponent(answer.execution_id)}`);
        } else {
          setRetriedAtSeq(seqBefore);
          restart();
        }
      },
    });
  };
  const onCancel = () => {
    retry.reset();
    cancel.mutate();
  };

  const actionError = cancel.error?.message ?? retry.error?.message ?? null;
  // Branch handles need the node types; without them (failed call) the graph still draws.
  const typesReady = nodeTypes.isSuccess || nodeTypes.isError;

  return (
    <div className="run-page" data-execution-id={executionId}>
      <RunHeader
        executionId={executionId}
        run={run}
        statuses={statuses}
        connection={stream.connection}
        retryInMs={stream.retryInMs}
        onCancel={onCancel}
        onRetry={onRetry}
        cancelling={cancel.isPending}
        retrying={retry.isPending || retriedAtSeq !== null}
        actionError={actionError}
        onDelete={() => {
          remove.reset();
          setConfirmDelete(true);
        }}
      />
      {confirmDelete ? (
        <ConfirmDialog
          title="Delete this run?"
          confirmLabel="Delete"
          busy={remove.isPending}
          error={remove.error ? <p className="error">{remove.error.message}</p> : null}
          onConfirm={() => remove.mutate(undefined, { onSuccess: () => navigate("/runs", { replace: true }) })}
          onCancel={() => setConfirmDelete(false)}
        >
          <p>The run, its node states and its events are deleted. This cannot be undone.</p>
        </ConfirmDialog>
      ) : null}
      {stream.error ? (
        <p className="error" role="alert">
          {stream.error}
        </p>
      ) : null}
      {nodeTypes.isError ? (
        <p className="error">Node types could not be loaded ({nodeTypes.error.message}); branch labels may be missing.</p>
      ) : null}
      {definition && statuses ? (
        <>
          <WaitingPanel executionId={executionId} states={statuses.nodes} labelOf={labelOf} onSelect={select} />
          <div className="run-body">
            {typesReady ? (
              <RunCanvas
                definition={definition}
                nodeTypes={nodeTypes.data ?? NO_NODE_TYPES}
                states={shownStates ?? statuses.nodes}
                runFinished={runFinished}
                onSelect={select}
                loops={loops}
                items={itemActions}
              />
            ) : (
              <div className="run-canvas run-canvas-loading">
                <p role="status">Loading the canvas…</p>
              </div>
            )}
            <NodeDetails
              definition={definition}
              states={shownStates ?? statuses.nodes}
              items={items}
              variables={run?.variables}
              nodeId={selected}
              runFinished={runFinished}
              onClose={() => setSelected(null)}
            />
          </div>
          <HistoryStatus
            history={statuses.history}
            loading={stream.historyLoading}
            error={stream.historyError}
            onLoadMore={stream.loadHistory}
          />
          <Timeline
            nodes={statuses.nodes}
            runStart={statuses.startedAt}
            live={!runFinished}
            labels={labels}
            selected={selected}
            onSelect={select}
          />
          <ChildRuns executionId={executionId} live={!runFinished} />
        </>
      ) : stream.error ? null : (
        <p className="muted">Loading the run…</p>
      )}
    </div>
  );
}
