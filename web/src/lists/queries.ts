// TanStack Query hooks of the workflows and runs lists (server state for src/routes/*List.tsx).
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { UnauthorizedError, type Workflow, api } from "../api/client";
import type { TriggerTypeName } from "../triggers/origin";
import { RUNS_PAGE_SIZE, WORKFLOWS_PAGE_SIZE } from "./filters";
import { type RunStatus, type RunSummary, isUnfinished } from "./types";
import { type WorkflowDefinition, duplicateDefinition, problemLines } from "./workflowFile";

/** How often a list showing unfinished runs asks again (ms). */
export const LIVE_REFRESH_MS = 3000;

/** A failed call: its status and the server's reasons, one line each. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly lines: string[],
  ) {
    super(lines.join("\n"));
  }
}

function failure(response: Response, body: unknown, what: string): Error {
  if (response.status === 401) return new UnauthorizedError("not signed in");
  return new ApiError(response.status, problemLines(body, `${what} (HTTP ${response.status})`));
}

/**
 * One page of workflows, refreshed while a last run is unfinished. With `q` (see
 * `workflowSearchQuery`), the server's page of the workflows whose name contains it.
 */
export function useWorkflowPage(page: number, q?: string) {
  return useQuery({
    queryKey: ["workflows", { page, q: q ?? null }],
    queryFn: async () => {
      const query = {
        limit: WORKFLOWS_PAGE_SIZE,
        offset: page * WORKFLOWS_PAGE_SIZE,
        ...(q === undefined ? {} : { q }),
      };
      const { data, error, response } = await api.GET("/workflows/", { params: { query } });
      if (data === undefined) throw failure(response, error, "Could not load the workflows");
      return data;
    },
    placeholderData: keepPreviousData,
    refetchInterval: (query) =>
      query.state.data?.some((w) => w.last_run && isUnfinished(w.last_run.status)) ? LIVE_REFRESH_MS : false,
  });
}

/** One workflow, in full. */
export async function fetchWorkflow(id: string): Promise<Workflow> {
  const { data, error, response } = await api.GET("/workflows/{workflow_id}", {
    params: { path: { workflow_id: id } },
  });
  if (data === undefined) throw failure(response, error, "Could not load the workflow");
  return data;
}

/** One workflow (the per-workflow runs list's heading). */
export function useWorkflow(id: string | undefined) {
  return useQuery({
    queryKey: ["workflow", id],
    queryFn: () => fetchWorkflow(id ?? ""),
    enabled: id !== undefined,
  });
}

export interface RunsQuery {
  /** Only this workflow's runs; all workflows when undefined. */
  workflowId?: string;
  status: RunStatus | null;
  /** Only runs started by this trigger type (`manual`, `schedule`, ...). */
  trigger?: TriggerTypeName | null;
  page: number;
}

/** A page of runs, newest first, refreshed every few seconds while one is unfinished. */
export function useRuns({ workflowId, status, trigger = null, page }: RunsQuery) {
  return useQuery({
    queryKey: ["runs", workflowId ?? null, status, trigger, page],
    queryFn: async () => {
      // One endpoint for both lists: GET /workflows/{id}/executions would send every
      // run's whole event log (its `logs`), every few seconds while one is unfinished.
      const query = {
        limit: RUNS_PAGE_SIZE,
        offset: page * RUNS_PAGE_SIZE,
        ...(status ? { status } : {}),
        ...(trigger ? { trigger } : {}),
        ...(workflowId === undefined ? {} : { workflow_id: workflowId }),
      };
      const { data, error, response } = await api.GET("/workflows/executions", { params: { query } });
      if (data === undefined) throw failure(response, error, "Could not load the runs");
      return data satisfies RunSummary[];
    },
    placeholderData: keepPreviousData,
    refetchInterval: (query) =>
      query.state.data?.some((run) => isUnfinished(run.status)) ? LIVE_REFRESH_MS : false,
  });
}

async function createWorkflow(definition: WorkflowDefinition): Promise<Workflow> {
  const { data, error, response } = await api.POST("/workflows/", { body: definition });
  if (data === undefined) throw failure(response, error, "Could not create the workflow");
  return data;
}

/** POST /workflows/ (import): the new workflow, or an ApiError with the server's problems. */
export function useCreateWorkflow() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: createWorkflow,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["workflows"] }),
  });
}

/** Copies a workflow as "<name> (copy)" from its full definition. */
export function useDuplicateWorkflow() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) => {
      return createWorkflow(duplicateDefinition(await fetchWorkflow(id)));
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["workflows"] }),
  });
}

/** DELETE /workflows/{id}; its runs stay. */
export function useDeleteWorkflow() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (id: string) => {
      const { error, response } = await api.DELETE("/workflows/{workflow_id}", {
        params: { path: { workflow_id: id } },
      });
      if (!response.ok) throw failure(response, error, "Could not delete the workflow");
    },
    onSuccess: (_data, id) => {
      queryClient.removeQueries({ queryKey: ["workflow", id] });
      return queryClient.invalidateQueries({ queryKey: ["workflows"] });
    },
  });
}
