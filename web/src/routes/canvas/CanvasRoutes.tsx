// The canvas routes, split out of the first load (React Flow is most of their weight).
// Placeholders for now: the editor and the run view are the next steps of issue 9.
import { Background, ReactFlow } from "@xyflow/react";
import "@xyflow/react/dist/style.css";
import { Link, useParams } from "react-router";

function Coming({ title, children }: { title: string; children: React.ReactNode }) {
  return (
    <section aria-labelledby="coming-title" className="coming">
      <h1 id="coming-title">{title}</h1>
      <p role="status">{children}</p>
      <div className="canvas" aria-label="Canvas preview" role="region">
        <ReactFlow nodes={[]} edges={[]} fitView proOptions={{ hideAttribution: false }}>
          <Background />
        </ReactFlow>
      </div>
      <p>
        <Link to="/">Back to the workflows</Link>
      </p>
    </section>
  );
}

export function NewWorkflow() {
  return <Coming title="New workflow">The workflow editor is coming soon.</Coming>;
}

export function WorkflowEditor() {
  const { id = "" } = useParams();
  return (
    <Coming title={`Workflow ${id}`}>The workflow editor is coming soon.</Coming>
  );
}

export function RunView() {
  const { executionId = "" } = useParams();
  return <Coming title={`Run ${executionId}`}>The live run view is coming soon.</Coming>;
}
