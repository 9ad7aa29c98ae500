// The canvas routes, split out of the first load (React Flow is most of their weight).
import "@xyflow/react/dist/style.css";
import { useParams } from "react-router";
import { EditorPage } from "../../editor/EditorPage";
import { RunPage } from "../../runs/RunPage";

export function NewWorkflow() {
  return <EditorPage />;
}

export function WorkflowEditor() {
  const { id = "" } = useParams();
  // keyed: opening another workflow starts a fresh editor (no state carried over).
  return <EditorPage key={id} workflowId={id} />;
}

export function RunView() {
  const { executionId = "" } = useParams();
  return <RunPage key={executionId} executionId={executionId} />;
}
