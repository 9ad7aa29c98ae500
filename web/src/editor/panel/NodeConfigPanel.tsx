// PLACEHOLDER until the node settings panel lands (issue 9): replaced wholesale.
import type { NodeConfigPanelProps } from "./types";

export function NodeConfigPanel({ node }: NodeConfigPanelProps) {
  return (
    <section aria-label="Node settings">
      <h2>{node.name || node.id}</h2>
    </section>
  );
}
