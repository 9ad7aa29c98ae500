import { useId } from "react";
import { Link, useParams, useSearchParams } from "react-router";
import { ErrorLines } from "../lists/ErrorLines";
import { Pager } from "../lists/Pager";
import { StatusBadge } from "../lists/StatusBadge";
import { TimeAgo } from "../lists/TimeAgo";
import { RUNS_PAGE_SIZE, type RunFilters, parseRunFilters, runFiltersToParams } from "../lists/filters";
import { runDuration, shortId } from "../lists/format";
import { useRuns, useWorkflow } from "../lists/queries";
import { RUN_STATUSES, type RunSummary, isRunStatus, isUnfinished } from "../lists/types";
import { TRIGGER_TYPES, isTriggerType } from "../triggers/origin";
import { RunOriginView } from "../triggers/RunOrigin";
import { formatDuration, useNow } from "../time";
import "../lists/lists.css";

/** Runs across workflows (`/ui/runs`) or of one (`/ui/workflows/:id/runs`), newest first. */
export function RunsList() {
  const { id } = useParams();
  const [params, setParams] = useSearchParams();
  const filters = parseRunFilters(params);
  const runs = useRuns({ workflowId: id, status: filters.status, trigger: filters.trigger, page: filters.page });
  const workflow = useWorkflow(id);
  const statusId = useId();
  const triggerId = useId();
  const rows = runs.data ?? [];
  const now = useNow(rows.some((run) => isUnfinished(run.status)));

  function update(next: RunFilters) {
    setParams(runFiltersToParams(next));
  }

  const workflowPath = id ? `/workflows/${encodeURIComponent(id)}` : null;
  const title = id ? (workflow.data?.name ?? (workflow.isError ? id : "…")) : "Runs";

  return (
    <section aria-labelledby="runs-title" aria-busy={runs.isFetching}>
      <div className="page-title">
        <div>
          <h1 id="runs-title">{title}</h1>
          {workflowPath ? (
            <p className="subtitle">
              Runs of this workflow · <Link to={workflowPath}>Edit workflow</Link> ·{" "}
              <Link to="/runs">All runs</Link>
            </p>
          ) : null}
        </div>
      </div>
      <div className="list-toolbar">
        <div className="field-inline">
          <label htmlFor={statusId}>Status</label>
          <select
            id={statusId}
            value={filters.status ?? ""}
            onChange={(event) => {
              const value = event.target.value;
              update({ ...filters, status: isRunStatus(value) ? value : null, page: 0 });
            }}
          >
            <option value="">All</option>
            {RUN_STATUSES.map((status) => (
              <option key={status} value={status}>
                {status}
              </option>
            ))}
          </select>
        </div>
        <div className="field-inline">
          <label htmlFor={triggerId}>Started by</label>
          <select
            id={triggerId}
            value={filters.trigger ?? ""}
            onChange={(event) => {
              const value = event.target.value;
              update({ ...filters, trigger: isTriggerType(value) ? value : null, page: 0 });
            }}
          >
            <option value="">Anything</option>
            {TRIGGER_TYPES.map((type) => (
              <option key={type} value={type}>
                {type}
              </option>
            ))}
          </select>
        </div>
      </div>
      {runs.isPending ? (
        <p role="status">Loading runs…</p>
      ) : runs.isError ? (
        <div role="alert" className="notice notice-error">
          <ErrorLines error={runs.error} />{" "}
          <button type="button" className="secondary" onClick={() => void runs.refetch()}>
            Try again
          </button>
        </div>
      ) : (
        <>
          {rows.length === 0 ? (
            <div className="empty-state">
              <p>
                {noRunsText(filters)}
              </p>
              {workflowPath && filters.page === 0 && !filters.status && !filters.trigger ? (
                <Link className="button" to={workflowPath}>
                  Open the workflow
                </Link>
              ) : null}
            </div>
          ) : (
            <table className="table">
              <caption className="visually-hidden">{id ? `Runs of ${title}` : "Runs of every workflow"}</caption>
              <thead>
                <tr>
                  <th scope="col">Run</th>
                  <th scope="col">Status</th>
                  <th scope="col">{id ? "Version" : "Workflow"}</th>
                  <th scope="col">Started</th>
                  <th scope="col">Duration</th>
                  <th scope="col">Started by</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((run) => (
                  <RunRow key={run.execution_id} run={run} perWorkflow={id !== undefined} now={now} />
                ))}
              </tbody>
            </table>
          )}
          <Pager
            label="Runs"
            page={filters.page}
            hasNext={rows.length === RUNS_PAGE_SIZE}
            onPage={(page) => update({ ...filters, page })}
          />
        </>
      )}
    </section>
  );
}

/** The empty list's sentence: what the filters asked for. */
function noRunsText({ status, trigger, page }: RunFilters): string {
  if (page > 0) return "No runs on this page.";
  if (!status && !trigger) return "No runs yet. Open a workflow and press Run.";
  return `No ${status ? `${status} ` : ""}runs${trigger ? ` started by ${trigger}` : ""}.`;
}

function RunRow({ run, perWorkflow, now }: { run: RunSummary; perWorkflow: boolean; now: number }) {
  const short = shortId(run.execution_id);
  const duration = runDuration(run, now);
  return (
    <tr>
      <th scope="row">
        <Link to={`/runs/${encodeURIComponent(run.execution_id)}`} aria-label={`Open run ${short}`} className="mono">
          {short}
        </Link>
      </th>
      <td>
        <span title={run.error ?? undefined}>
          <StatusBadge status={run.status} />
        </span>
        {run.dead_letter ? <span className="badge dead-letter">dead letter</span> : null}
      </td>
      <td>
        {perWorkflow ? (
          `v${run.workflow_version}`
        ) : (
          <>
            <Link to={`/workflows/${encodeURIComponent(run.workflow_id)}`}>
              {run.workflow_name ?? run.workflow_id}
            </Link>{" "}
            <span className="muted">v{run.workflow_version}</span>
          </>
        )}
      </td>
      <td>{run.start_time ? <TimeAgo iso={run.start_time} now={now} /> : <span className="muted">not started</span>}</td>
      <td className="numeric">{duration === null ? <span className="muted">—</span> : formatDuration(duration)}</td>
      <td>
        <RunOriginView trigger={run.trigger} />
      </td>
    </tr>
  );
}
