// Where a run sits among sub-workflow runs: its parent (the run whose sub-workflow node
// started it) and its children (runs its own sub-workflow nodes started).
import { Link } from "react-router";
import { StatusBadge } from "../lists/StatusBadge";
import { shortId } from "../lists/format";
import { useChildRuns } from "./queries";

/** The run's parent, when it has one: a link to it and the node that started this run. */
export function ParentLink({ parentId, nodeId }: { parentId: string; nodeId: string | null }) {
  return (
    <span className="run-parent">
      <Link to={`/runs/${encodeURIComponent(parentId)}`} aria-label={`Parent run ${parentId}`}>
        {shortId(parentId)}
      </Link>
      {nodeId ? <span className="muted"> (node {nodeId})</span> : null}
    </span>
  );
}

/** The "Child runs" region: hidden while there are none. */
export function ChildRuns({ executionId, live }: { executionId: string; live: boolean }) {
  const children = useChildRuns(executionId, live);
  if (children.isError) {
    return (
      <p className="muted small" role="status">
        Child runs could not be loaded ({children.error.message}).
      </p>
    );
  }
  // Filtered here too: a server without the filter would answer every run.
  const runs = (children.data ?? []).filter((run) => run.parent_execution_id === executionId);
  if (runs.length === 0) return null;
  return (
    <section className="run-children" aria-label="Child runs">
      <h2>Child runs</h2>
      <ul>
        {runs.map((run) => {
          const node = run.parent_node_id ?? null;
          return (
            <li key={run.execution_id}>
              <Link to={`/runs/${encodeURIComponent(run.execution_id)}`}>{shortId(run.execution_id)}</Link>{" "}
              <StatusBadge status={run.status} />
              {node ? <span className="muted"> from node {node}</span> : null}
            </li>
          );
        })}
      </ul>
    </section>
  );
}
