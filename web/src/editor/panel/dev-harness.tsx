import { createRoot } from "react-dom/client";
import { useState } from "react";
import "../../styles.css";
import { NodeConfigPanel } from "./NodeConfigPanel";
import { fixtureType } from "./testing";
import type { NodeSpec, WorkflowDefinition } from "../../canvas/definition";

const params = new URLSearchParams(location.search);
const type = params.get("type") ?? "ai-processor";
if (params.get("theme")) document.documentElement.dataset.theme = params.get("theme")!;
const definition: WorkflowDefinition = {
  name: "wf", status: "active", metadata: {}, variables: ["email", "plan"], edges: [],
  nodes: [
    { id: "start", type: "start", on_error: "fail" },
    { id: "ai1", type: "ai-processor", on_error: "fail", config: { prompt: "Summarise {{ email }} for {{ plan }}" } },
    { id: "check", type: "condition", on_error: "fail", config: { condition: "outputs.ai1 != ''" } },
    { id: "hook", type: "webhook", on_error: "branch", config: { url: "https://example.com/{{ email }}", headers: { "X-Team": "growth" }, expected_status: [200, 201] } },
    { id: "mail", type: "email", on_error: "fail", config: { to: ["a@example.com"], subject: "Hi" } },
    { id: "end", type: "end", on_error: "fail", config: { output: { summary: "{{ outputs.ai1 }}" } } },
    { id: "tx", type: "transformer", on_error: "fail", config: { transform_type: "compose", mapping: { total: "input.a + 1" } } },
  ],
};
function Harness() {
  const [node, setNode] = useState<NodeSpec>(definition.nodes!.find((n) => n.type === type)!);
  (window as unknown as { lastSpec: NodeSpec }).lastSpec = node;
  return (
    <div style={{ width: 380, display: "flex", borderLeft: "1px solid var(--border)" }}>
      <NodeConfigPanel node={node} nodeType={fixtureType(type)} definition={definition} onChange={setNode} onClose={() => {}}
        issues={[{ node_id: node.id, field: "config.prompt", message: "String should have at least 1 character" }, { node_id: node.id, field: "config.headers.X-Team", message: "bad header" }, { node_id: node.id, field: "retry.max_attempts", message: "at most 10" }, { node_id: node.id, field: "type", message: "example other issue" }]} />
    </div>
  );
}
createRoot(document.getElementById("root")!).render(<Harness />);
