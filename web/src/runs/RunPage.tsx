// PLACEHOLDER until the run view lands (issue 9): replaced wholesale.
export function RunPage({ executionId }: { executionId: string }) {
  return <h1>Run {executionId}</h1>;
}
