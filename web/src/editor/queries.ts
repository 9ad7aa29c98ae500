// The editor's server state (TanStack Query over the typed client).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { UnauthorizedError, type Workflow, api, errorMessage } from "../api/client";
import type { NodeTypeInfo, WorkflowDefinition } from "../canvas/definition";
import type { ValidationIssue } from "./pins";

/** A refusal with problems to show (a 422): the summary and every problem. */
export class ProblemError extends Error {
  constructor(
    message: string,
    readonly problems: ValidationIssue[],
    /** The generator's last draft, when the server includes it with its problems. */
    readonly draft?: WorkflowDefinition,
  ) {
    super(message);
  }
}

/** A 404: the page says so and links back instead of retrying. */
export class NotFoundError extends Error {}

interface ProblemBody {
  message?: unknown;
  detail?: unknown;
  workflow?: unknown;
}

function messageOf(body: unknown, fallback: string): string {
  const message = (body as ProblemBody | undefined)?.message;
  return typeof message === "string" && message ? message : errorMessage(body, fallback);
}

/** The problems of a 422 body (`detail` as a list), else none. */
export function problemsOf(body: unknown): ValidationIssue[] {
  const detail = (body as ProblemBody | undefined)?.detail;
  if (!Array.isArray(detail)) return [];
  return detail
    .filter((d): d is Record<string, unknown> => typeof d === "object" && d !== null)
    .map((d) => ({
      node_id: typeof d.node_id === "string" ? d.node_id : null,
      field: typeof d.field === "string" ? d.field : Array.isArray(d.loc) ? d.loc.join(".") : null,
      message: typeof d.message === "string" ? d.message : typeof d.msg === "string" ? d.msg : "invalid",
    }));
}

/** The error a failed call becomes: 401 → UnauthorizedError, 404 → NotFoundError, 422 → ProblemError. */
function failure(response: Response, body: unknown, fallback: string): Error {
  if (response.status === 401) return new UnauthorizedError("not signed in");
  const message = messageOf(body, `${fallback} (HTTP ${response.status})`);
  if (response.status === 404) return new NotFoundError(message);
  if (response.status === 422) {
    const draft = (body as ProblemBody | undefined)?.workflow;
    return new ProblemError(message, problemsOf(body), isDefinition(draft) ? draft : undefined);
  }
  return new Error(message);
}

function isDefinition(value: unknown): value is WorkflowDefinition {
  return typeof value === "object" && value !== null && Array.isArray((value as { nodes?: unknown }).nodes);
}

/** Every node type (`GET /node-types`): fixed for the server's lifetime, so fetched rarely. */
export function useNodeTypes() {
  return useQuery({
    queryKey: ["node-types"],
    queryFn: async (): Promise<NodeTypeInfo[]> => {
      const { data, error, response } = await api.GET("/node-types");
      if (data === undefined) throw failure(response, error, "could not load the node types");
      return data;
    },
    staleTime: 60 * 60_000,
  });
}

export const workflowKey = (id: string) => ["workflow", id] as const;

/** One stored workflow (404 → NotFoundError, not retried). */
export function useWorkflow(id: string | undefined) {
  return useQuery({
    queryKey: workflowKey(id ?? ""),
    enabled: id !== undefined,
    queryFn: async (): Promise<Workflow> => {
      const { data, error, response } = await api.GET("/workflows/{workflow_id}", {
        params: { path: { workflow_id: id ?? "" } },
      });
      if (data === undefined) throw failure(response, error, "could not load the workflow");
      return data;
    },
    retry: (failures, error) => failures < 2 && !(error instanceof NotFoundError) && !(error instanceof UnauthorizedError),
  });
}

/** Store a definition: a new workflow (no id) or a new version of `id`. 422 → ProblemError. */
export function useSaveWorkflow() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, definition }: { id?: string; definition: WorkflowDefinition }): Promise<Workflow> => {
      const { data, error, response } = id
        ? await api.PUT("/workflows/{workflow_id}", { params: { path: { workflow_id: id } }, body: definition })
        : await api.POST("/workflows/", { body: definition });
      if (data === undefined) throw failure(response, error, "could not save the workflow");
      return data;
    },
    onSuccess: (workflow) => {
      queryClient.setQueryData(workflowKey(workflow.id), workflow);
      return queryClient.invalidateQueries({ queryKey: ["workflows"] });
    },
  });
}

export interface ValidationAnswer {
  valid: boolean;
  issues: ValidationIssue[];
}

/** `POST /workflows/validate`; a 422 (the body did not parse) is an answer too, with its problems. */
export async function validateDefinition(definition: WorkflowDefinition, signal?: AbortSignal): Promise<ValidationAnswer> {
  const { data, error, response } = await api.POST("/workflows/validate", { body: definition, signal });
  if (data !== undefined) return { valid: data.valid, issues: data.issues };
  if (response.status === 422) return { valid: false, issues: problemsOf(error) };
  throw failure(response, error, "could not validate the workflow");
}

/** Validation as a mutation (the editor debounces it and aborts stale calls through `signal`). */
export function useValidateWorkflow() {
  return useMutation({
    mutationFn: ({ definition, signal }: { definition: WorkflowDefinition; signal?: AbortSignal }) =>
      validateDefinition(definition, signal),
  });
}

/** Start a run in the background (`async_execution`); answers its execution id. */
export function useExecuteWorkflow() {
  return useMutation({
    mutationFn: async ({ id, inputs }: { id: string; inputs: Record<string, unknown> }) => {
      const { data, error, response } = await api.POST("/workflows/{workflow_id}/execute", {
        params: { path: { workflow_id: id } },
        body: { inputs, async_execution: true },
      });
      if (data === undefined) throw failure(response, error, "could not start the run");
      return data;
    },
  });
}

/** `POST /ai/workflows/generate` (not saved): the draft, or ProblemError on 422. */
export function useGenerateWorkflow() {
  return useMutation({
    mutationFn: async ({ prompt, signal }: { prompt: string; signal?: AbortSignal }): Promise<WorkflowDefinition> => {
      const { data, error, response } = await api.POST("/ai/workflows/generate", { body: { prompt, save: false }, signal });
      if (data === undefined) throw failure(response, error, "could not generate a workflow");
      return data.workflow;
    },
  });
}
