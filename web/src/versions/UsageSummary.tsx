// A workflow's usage over the last 30 days (GET /workflows/{id}/usage): totals and a
// table of the days with runs, each with a bar for its cost. Shown in the workflow
// settings; collapsed until opened, so the usage is fetched only when asked for.
import { useState } from "react";
import { formatCost, formatTokens } from "../runs/usage";
import { useWorkflowUsage } from "./queries";
import "./versions.css";

const DAYS = 30;

export function UsageSummary({ workflowId }: { workflowId: string }) {
  const [open, setOpen] = useState(false);
  return (
    <details className="settings-usage" onToggle={(event) => setOpen(event.currentTarget.open)}>
      <summary>Usage, last {DAYS} days</summary>
      {open ? <UsageTable workflowId={workflowId} /> : null}
    </details>
  );
}

function UsageTable({ workflowId }: { workflowId: string }) {
  const usage = useWorkflowUsage(workflowId, DAYS);
  if (usage.isPending) return <p role="status">Loading the usage…</p>;
  if (usage.isError) return <p className="error small">{usage.error.message}</p>;
  const { total } = usage.data;
  const days = usage.data.days.filter((d) => d.runs > 0 || d.total_tokens > 0);
  const most = Math.max(...days.map((d) => d.cost), 0);
  return (
    <>
      <p className="editor-hint" aria-label="Usage totals">
        {total.runs} run{total.runs === 1 ? "" : "s"}, {formatTokens(total.total_tokens)} tokens, {formatCost(total.cost)}
      </p>
      {days.length === 0 ? null : (
        <table className="usage-table" aria-label="Usage by day">
          <thead>
            <tr>
              <th scope="col">Day</th>
              <th scope="col">Runs</th>
              <th scope="col">Tokens</th>
              <th scope="col">Cost</th>
            </tr>
          </thead>
          <tbody>
            {days.map((day) => (
              <tr key={day.date}>
                <td>{day.date}</td>
                <td>{day.runs}</td>
                <td>{formatTokens(day.total_tokens)}</td>
                <td>
                  <span className="usage-bar" style={{ width: `${most > 0 ? Math.round((day.cost / most) * 40) : 0}px` }} aria-hidden="true" />
                  {formatCost(day.cost)}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
