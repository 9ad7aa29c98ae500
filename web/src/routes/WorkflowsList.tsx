import { Link } from "react-router";
import { useWorkflows } from "../api/queries";

export function WorkflowsList() {
  const workflows = useWorkflows();
  return (
    <section aria-labelledby="workflows-title">
      <div className="page-title">
        <h1 id="workflows-title">Workflows</h1>
        <Link className="button" to="/workflows/new">
          New workflow
        </Link>
      </div>
      {workflows.isPending ? (
        <p role="status">Loading workflows…</p>
      ) : workflows.isError ? (
        <p role="alert">{workflows.error.message}</p>
      ) : workflows.data.length === 0 ? (
        <p>
          No workflows yet. <Link to="/workflows/new">Create one</Link>.
        </p>
      ) : (
        <table className="table">
          <caption className="visually-hidden">Your workflows</caption>
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Version</th>
              <th scope="col">Status</th>
            </tr>
          </thead>
          <tbody>
            {workflows.data.map((workflow) => (
              <tr key={workflow.id}>
                <td>
                  <Link to={`/workflows/${encodeURIComponent(workflow.id)}`}>{workflow.name}</Link>
                </td>
                <td>{workflow.version}</td>
                <td>
                  <span className={`badge badge-${workflow.status}`}>{workflow.status}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
