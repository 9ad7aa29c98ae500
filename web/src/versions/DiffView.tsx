// A diff of two workflow versions (GET /workflows/{id}/versions/diff): nodes added,
// removed and changed (field by field), edges added and removed, workflow fields.
import type { Schemas } from "../api/client";

type VersionDiff = Schemas["VersionDiff"];

/** A value as one short line (JSON, cut at `max` characters). */
export function shortValue(value: unknown, max = 80): string {
  if (value === undefined) return "—";
  const text = typeof value === "string" ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function edgeText(edge: Schemas["EdgeView"]): string {
  return `${edge.from} → ${edge.to}${edge.branch ? ` (${edge.branch})` : ""}`;
}

/** Whether the diff finds no difference at all. */
export function isEmptyDiff(diff: VersionDiff): boolean {
  return (
    diff.nodes.added.length === 0 &&
    diff.nodes.removed.length === 0 &&
    diff.nodes.changed.length === 0 &&
    diff.edges.added.length === 0 &&
    diff.edges.removed.length === 0 &&
    diff.workflow.length === 0
  );
}

function Changes({ changes, label }: { changes: Schemas["ValueChange"][]; label: string }) {
  return (
    <table className="diff-changes" aria-label={label}>
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Before</th>
          <th scope="col">After</th>
        </tr>
      </thead>
      <tbody>
        {changes.map((change) => (
          <tr key={change.path}>
            <th scope="row">
              <code>{change.path}</code>
            </th>
            <td className="diff-removed">{shortValue(change.from)}</td>
            <td className="diff-added">{shortValue(change.to)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function DiffView({ diff }: { diff: VersionDiff }) {
  if (isEmptyDiff(diff)) return <p className="muted">No differences between version {diff.from} and version {diff.to}.</p>;
  return (
    <div className="diff" aria-label={`Changes from version ${diff.from} to version ${diff.to}`} role="group">
      {diff.workflow.length > 0 ? (
        <section>
          <h3>Workflow</h3>
          <Changes changes={diff.workflow} label="Workflow changes" />
        </section>
      ) : null}
      {diff.nodes.added.length + diff.nodes.removed.length + diff.nodes.changed.length > 0 ? (
        <section>
          <h3>Nodes</h3>
          <ul className="diff-list">
            {diff.nodes.added.map((id) => (
              <li key={`+${id}`} className="diff-added">
                + added <code>{id}</code>
              </li>
            ))}
            {diff.nodes.removed.map((id) => (
              <li key={`-${id}`} className="diff-removed">
                − removed <code>{id}</code>
              </li>
            ))}
            {diff.nodes.changed.map((node) => (
              <li key={`~${node.id}`}>
                ~ changed <code>{node.id}</code>
                <Changes changes={node.changes} label={`Changes of ${node.id}`} />
              </li>
            ))}
          </ul>
        </section>
      ) : null}
      {diff.edges.added.length + diff.edges.removed.length > 0 ? (
        <section>
          <h3>Edges</h3>
          <ul className="diff-list">
            {diff.edges.added.map((edge) => (
              <li key={`+${edgeText(edge)}`} className="diff-added">
                + {edgeText(edge)}
              </li>
            ))}
            {diff.edges.removed.map((edge) => (
              <li key={`-${edgeText(edge)}`} className="diff-removed">
                − {edgeText(edge)}
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </div>
  );
}
