// A workflow's stored versions: list, diff, restore (TanStack Query over the API client).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type Schemas, type Workflow, api } from "../api/client";
import { callFailure } from "../runs/queries";

/** The newest versions first (up to `limit`). */
export function useVersions(workflowId: string, enabled = true, limit = 50) {
  return useQuery({
    queryKey: ["workflow", workflowId, "versions", limit],
    enabled,
    queryFn: async (): Promise<Schemas["VersionListItem"][]> => {
      const { data, error, response } = await api.GET("/workflows/{workflow_id}/versions", {
        params: { path: { workflow_id: workflowId }, query: { limit } },
      });
      if (data === undefined) throw callFailure(response, error, "Could not list the versions");
      return [...data].sort((a, b) => b.version - a.version);
    },
  });
}

/** What changed from version `from` to version `to` (null: nothing asked yet). */
export function useVersionDiff(workflowId: string, from: number | null, to: number | null) {
  return useQuery({
    queryKey: ["workflow", workflowId, "diff", from, to],
    enabled: from !== null && to !== null,
    queryFn: async (): Promise<Schemas["VersionDiff"]> => {
      const { data, error, response } = await api.GET("/workflows/{workflow_id}/versions/diff", {
        params: { path: { workflow_id: workflowId }, query: { from: from ?? 0, to: to ?? 0 } },
      });
      if (data === undefined) throw callFailure(response, error, "Could not compare the versions");
      return data;
    },
    // Stored versions never change.
    staleTime: Infinity,
  });
}

/** POST /workflows/{id}/versions/{n}/restore: the workflow as its new version. */
export function useRestoreVersion(workflowId: string) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (version: number): Promise<Workflow> => {
      const { data, error, response } = await api.POST("/workflows/{workflow_id}/versions/{version}/restore", {
        params: { path: { workflow_id: workflowId, version } },
      });
      if (data === undefined) throw callFailure(response, error, `Could not restore version ${version}`);
      return data;
    },
    onSuccess: (workflow) => {
      queryClient.setQueryData(["workflow", workflowId], workflow);
      return queryClient.invalidateQueries({ queryKey: ["workflows"] });
    },
  });
}

/** Runs, tokens and cost per day over the last `days` days. */
export function useWorkflowUsage(workflowId: string, days = 30, enabled = true) {
  return useQuery({
    queryKey: ["workflow", workflowId, "usage", days],
    enabled,
    queryFn: async (): Promise<Schemas["WorkflowUsage"]> => {
      const { data, error, response } = await api.GET("/workflows/{workflow_id}/usage", {
        params: { path: { workflow_id: workflowId }, query: { days } },
      });
      if (data === undefined) throw callFailure(response, error, "Could not load the usage");
      return data;
    },
  });
}
