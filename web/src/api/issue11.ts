// Typed wrappers for the issue-11 routes the generated schema (schema.d.ts) does not
// list yet: versions, diff, restore, per-workflow usage, DELETE of a run, runs by
// parent. They go through the app's client (same middleware: CSRF, 401) typed by the
// local `Issue11Paths` below. Once the lead regenerates schema.d.ts with these routes,
// `issue11Api` becomes plain `api` and these types `Schemas[...]` (see web/README.md).
import type { Client } from "openapi-fetch";
import { type Schemas, type Workflow, api } from "./client";

/** One stored version of a workflow (GET /workflows/{id}/versions items). */
export interface VersionInfo {
  version: number;
  created_at: string;
  name?: string;
  node_count?: number;
  [key: string]: unknown;
}

/** One changed field: its dotted path (`config.prompt`) and values before and after. */
export interface FieldChange {
  path: string;
  from: unknown;
  to: unknown;
}

export interface DiffEdge {
  from: string;
  to: string;
  branch?: string | null;
}

/** GET /workflows/{id}/versions/diff?from=a&to=b. */
export interface VersionDiff {
  from: number;
  to: number;
  nodes: { added: string[]; removed: string[]; changed: { id: string; changes: FieldChange[] }[] };
  edges: { added: DiffEdge[]; removed: DiffEdge[] };
  workflow: FieldChange[];
}

export interface UsageTotals {
  runs: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  cost: number;
}

/** GET /workflows/{id}/usage?days=N. */
export interface WorkflowUsage {
  workflow_id?: string;
  since?: string;
  total: UsageTotals;
  days: (UsageTotals & { date: string })[];
}

type Json<T> = { content: { "application/json": T } };
type Problem = Json<Schemas["ErrorDetail"]>;
type Get<Params, T> = {
  parameters: Params;
  get: { parameters: Params; responses: { 200: Json<T>; 401: Problem; 403: Problem; 404: Problem; 422: Problem } };
};
type WorkflowPath = { path: { workflow_id: string } };
type VersionPath = { path: { workflow_id: string; version: number } };

/** The issue-11 routes, in openapi-typescript's shape. */
export interface Issue11Paths {
  "/workflows/{workflow_id}/versions": Get<WorkflowPath & { query?: { limit?: number; offset?: number } }, VersionInfo[]>;
  "/workflows/{workflow_id}/versions/diff": Get<WorkflowPath & { query: { from: number; to: number } }, VersionDiff>;
  "/workflows/{workflow_id}/versions/{version}": Get<VersionPath, Workflow>;
  "/workflows/{workflow_id}/versions/{version}/restore": {
    parameters: VersionPath;
    post: { parameters: VersionPath; responses: { 200: Json<Workflow>; 201: Json<Workflow>; 404: Problem; 409: Problem; 422: Problem } };
  };
  "/workflows/{workflow_id}/usage": Get<WorkflowPath & { query?: { days?: number } }, WorkflowUsage>;
  "/workflows/executions/{execution_id}": {
    parameters: { path: { execution_id: string } };
    delete: {
      parameters: { path: { execution_id: string } };
      responses: { 204: { content?: never }; 404: Problem; 409: Problem };
    };
  };
  "/workflows/executions": Get<
    { query?: { parent_execution_id?: string; limit?: number; offset?: number } },
    Schemas["RunListItem"][]
  >;
}

/** The app's client, typed for the issue-11 routes. */
export const issue11Api = api as unknown as Client<Issue11Paths>;
