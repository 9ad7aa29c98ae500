// List state kept in the URL's query string, so a filtered page can be reloaded and shared.
import { type TriggerTypeName, isTriggerType } from "../triggers/origin";
import { type RunStatus, isRunStatus } from "./types";

/** Runs per page of the runs lists. */
export const RUNS_PAGE_SIZE = 25;
/** Workflows per page of the workflows list (the API's maximum page). */
export const WORKFLOWS_PAGE_SIZE = 100;

export interface RunFilters {
  /** Only runs with this status; null for all. */
  status: RunStatus | null;
  /** Only runs started by this trigger type; null for all. */
  trigger: TriggerTypeName | null;
  /** Zero-based page. */
  page: number;
}

export interface WorkflowFilters {
  /** Text the names must contain (case-insensitive, searched by the server); "" for all. */
  q: string;
  page: number;
}

/** A `?page=` value: 1-based in the URL, 0-based here; anything invalid is the first page. */
function parsePage(value: string | null): number {
  if (value === null || !/^\d+$/.test(value)) return 0;
  return Math.max(0, Number(value) - 1);
}

/** The runs list's filters from its query string. */
export function parseRunFilters(params: URLSearchParams): RunFilters {
  const status = params.get("status");
  const trigger = params.get("trigger");
  return {
    status: isRunStatus(status) ? status : null,
    trigger: isTriggerType(trigger) ? trigger : null,
    page: parsePage(params.get("page")),
  };
}

/** The query string for runs filters; defaults are left out, so the plain list has none. */
export function runFiltersToParams(filters: RunFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.status) params.set("status", filters.status);
  if (filters.trigger) params.set("trigger", filters.trigger);
  if (filters.page > 0) params.set("page", String(filters.page + 1));
  return params;
}

/** The workflows list's search and page from its query string. */
export function parseWorkflowFilters(params: URLSearchParams): WorkflowFilters {
  return { q: params.get("q") ?? "", page: parsePage(params.get("page")) };
}

/** The query string for the workflows list; an empty search and the first page are left out. */
export function workflowFiltersToParams(filters: WorkflowFilters): URLSearchParams {
  const params = new URLSearchParams();
  if (filters.q.trim()) params.set("q", filters.q);
  if (filters.page > 0) params.set("page", String(filters.page + 1));
  return params;
}

/** The longest search the server takes (GET /workflows/?q=, 422 beyond). */
export const WORKFLOW_SEARCH_MAX_LENGTH = 200;

/**
 * The `q` to send to GET /workflows/ for a search box's text: without the spaces around it,
 * or undefined for no search. The server matches it as one case-insensitive substring.
 */
export function workflowSearchQuery(q: string): string | undefined {
  const trimmed = q.trim();
  return trimmed === "" ? undefined : trimmed;
}
