// PLACEHOLDER until the editor lands (issue 9): replaced wholesale.
export function EditorPage({ workflowId }: { workflowId?: string }) {
  return <h1>{workflowId ? `Workflow ${workflowId}` : "New workflow"}</h1>;
}
