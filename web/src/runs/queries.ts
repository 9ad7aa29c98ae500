// Server state of the run view: node types (for branch handles), cancel and retry.
// The run itself comes from the live stream (its snapshot carries the definition and
// logs, see src/ductwork/api/live.py), so there is no GET of the execution here.
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type Schemas, UnauthorizedError, api, errorMessage } from "../api/client";
import type { NodeTypeInfo } from "../canvas/definition";

/** A readable message for a failed call: the body's detail or message, and the status. */
export function callFailure(response: Response, error: unknown, what: string): Error {
  if (response.status === 401) return new UnauthorizedError("not signed in");
  let reason = errorMessage(error, "");
  if (!reason && error && typeof error === "object" && "message" in error) {
    reason = String((error as { message: unknown }).message);
  }
  return new Error(`${what}: ${reason || `HTTP ${response.status}`}`);
}

/** Node types by name (they change only with the server: cached for the session). */
export function useNodeTypes() {
  return useQuery({
    queryKey: ["node-types"],
    queryFn: async (): Promise<Record<string, NodeTypeInfo>> => {
      const { data, error, response } = await api.GET("/node-types");
      if (data === undefined) throw callFailure(response, error, "Could not load the node types");
      return Object.fromEntries(data.map((t) => [t.type, t]));
    },
    staleTime: Infinity,
    gcTime: Infinity,
  });
}

/** POST /workflows/executions/{id}/cancel. */
export function useCancelRun(executionId: string) {
  return useMutation({
    mutationFn: async (): Promise<Schemas["RunView"]> => {
      const { data, error, response } = await api.POST("/workflows/executions/{execution_id}/cancel", {
        params: { path: { execution_id: executionId } },
      });
      if (data === undefined) throw callFailure(response, error, "Could not cancel the run");
      return data;
    },
  });
}

/** POST /workflows/executions/{id}/retry: answers the run (same id today), re-queued. */
export function useRetryRun(executionId: string) {
  return useMutation({
    mutationFn: async (): Promise<Schemas["RunView"]> => {
      const { data, error, response } = await api.POST("/workflows/executions/{execution_id}/retry", {
        params: { path: { execution_id: executionId } },
        body: { use_current_definition: false },
      });
      if (data === undefined) throw callFailure(response, error, "Could not retry the run");
      return data;
    },
  });
}

/** What a resume answered: the node was handed its payload and the run goes on. */
export type ResumeAnswer = Schemas["ResumeAnswer"];

/**
 * POST /workflows/executions/{id}/nodes/{node_id}/resume with `body` (the waiting node's
 * output, e.g. `{"approved": true}`). 409: not waiting yet; 410: answered already, timed
 * out, or the run ended.
 */
export function useResumeNode(executionId: string) {
  return useMutation({
    mutationFn: async ({ nodeId, body }: { nodeId: string; body: Record<string, unknown> }): Promise<ResumeAnswer> => {
      const { data, error, response } = await api.POST("/workflows/executions/{execution_id}/nodes/{node_id}/resume", {
        params: { path: { execution_id: executionId, node_id: nodeId } },
        body,
      });
      if (data === undefined) throw callFailure(response, error, "Could not resume the step");
      return data;
    },
  });
}

/** A run's child runs (its sub-workflow nodes' runs), refreshed while the parent runs. */
export function useChildRuns(executionId: string, live: boolean) {
  return useQuery({
    queryKey: ["runs", "children", executionId],
    queryFn: async () => {
      const { data, error, response } = await api.GET("/workflows/executions", {
        params: { query: { parent_execution_id: executionId, limit: 100 } },
      });
      if (data === undefined) throw callFailure(response, error, "Could not load the child runs");
      return data;
    },
    refetchInterval: live ? 3000 : false,
  });
}

/** DELETE /workflows/executions/{id} (204); the runs lists forget it. */
export function useDeleteRun(executionId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (): Promise<void> => {
      const { error, response } = await api.DELETE("/workflows/executions/{execution_id}", {
        params: { path: { execution_id: executionId } },
      });
      if (!response.ok) throw callFailure(response, error, "Could not delete the run");
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["runs"] }),
  });
}
