// PLACEHOLDER until the runs list lands (issue 9): replaced wholesale.
import { useParams } from "react-router";

/** Runs across workflows (`/ui/runs`) or of one (`/ui/workflows/:id/runs`). */
export function RunsList() {
  const { id } = useParams();
  return <h1>{id ? `Runs of ${id}` : "Runs"}</h1>;
}
