// Server state of the workflow settings: trigger types, a workflow's schedule, pause and
// resume (TanStack Query over the typed client).
import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { type Workflow, api } from "../api/client";
import { useMe } from "../api/queries";
import { workflowKey } from "../editor/queries";
import { callFailure } from "../runs/queries";
import type { TriggerTypeInfo } from "./schema";

/** Every trigger type (`GET /trigger-types`): fixed for the server's lifetime. */
export function useTriggerTypes() {
  return useQuery({
    queryKey: ["trigger-types"],
    queryFn: async (): Promise<TriggerTypeInfo[]> => {
      const { data, error, response } = await api.GET("/trigger-types");
      if (data === undefined) throw callFailure(response, error, "Could not load the trigger types");
      return data;
    },
    staleTime: Infinity,
  });
}

/** One time a schedule fires: the instant (UTC) and the same in the schedule's zone. */
export interface FireTime {
  utc: string;
  local: string;
}

/** One schedule trigger of a saved workflow (`GET /workflows/{id}/schedule`). */
export interface ScheduleInfo {
  /** Its position in the saved workflow's `triggers`. */
  index: number;
  key: string;
  timezone: string;
  paused: boolean;
  lastSlot: string | null;
  next: FireTime[];
}

/** How often the next fire times are asked again while shown (they move as time passes). */
export const SCHEDULE_REFRESH_MS = 60_000;

/** The saved workflow's schedules with their next fire times (`version` keys the cache). */
export function useSchedules(workflowId: string | undefined, version: number | undefined, enabled: boolean) {
  return useQuery({
    queryKey: ["schedule", workflowId ?? "", version ?? 0],
    enabled: enabled && workflowId !== undefined,
    queryFn: async (): Promise<ScheduleInfo[]> => {
      const { data, error, response } = await api.GET("/workflows/{workflow_id}/schedule", {
        params: { path: { workflow_id: workflowId ?? "" } },
      });
      if (data === undefined) throw callFailure(response, error, "Could not load the schedule");
      return data.map((schedule) => ({
        index: schedule.index,
        key: schedule.key,
        timezone: schedule.timezone,
        paused: schedule.paused,
        lastSlot: schedule.last_slot,
        next: schedule.next.map((time) => ({ utc: time.utc, local: time.local })),
      }));
    },
    refetchInterval: SCHEDULE_REFRESH_MS,
  });
}

/** `POST /workflows/{id}/pause` or `/resume`: the workflow as stored now (a new version). */
export function useSetPaused() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async ({ id, paused }: { id: string; paused: boolean }): Promise<Workflow> => {
      const init = { params: { path: { workflow_id: id } } };
      const { data, error, response } = paused
        ? await api.POST("/workflows/{workflow_id}/pause", init)
        : await api.POST("/workflows/{workflow_id}/resume", init);
      if (data === undefined) throw callFailure(response, error, paused ? "Could not pause the workflow" : "Could not resume the workflow");
      return data;
    },
    onSuccess: (workflow) => {
      queryClient.setQueryData(workflowKey(workflow.id), workflow);
      void queryClient.invalidateQueries({ queryKey: ["schedule", workflow.id] });
      return queryClient.invalidateQueries({ queryKey: ["workflows"] });
    },
  });
}

const NO_NAMES: string[] = [];

/**
 * The names of the stored `secret` credentials (what a webhook's token or HMAC auth
 * names), for suggestions; none for a role that may not read credentials (not asked).
 */
export function useSecretNames(): string[] {
  const me = useMe();
  const allowed = me.data?.permissions?.includes("credentials:read") ?? false;
  const names = useQuery({
    queryKey: ["credentials", "secret-names"],
    enabled: allowed,
    queryFn: async (): Promise<string[]> => {
      const { data, error, response } = await api.GET("/credentials", { params: { query: { limit: 100 } } });
      if (data === undefined) throw callFailure(response, error, "Could not list the credentials");
      return data.items.filter((item) => item.type === "secret").map((item) => item.name);
    },
    staleTime: 60_000,
  });
  return names.data ?? NO_NAMES;
}

/** A workflow the error workflow picker offers. */
export interface WorkflowChoice {
  id: string;
  name: string;
}

/**
 * The first 100 workflows by name, for the error workflow picker: fetched once a minute
 * at most (not the workflows list's query, which polls while runs are unfinished).
 */
export function useWorkflowChoices() {
  return useQuery({
    // Under "workflows": every save, import, duplicate and delete invalidates it too.
    queryKey: ["workflows", "choices"],
    queryFn: async (): Promise<WorkflowChoice[]> => {
      const { data, error, response } = await api.GET("/workflows/", { params: { query: { limit: 100 } } });
      if (data === undefined) throw callFailure(response, error, "Could not list the workflows");
      return data.map((w) => ({ id: w.id, name: w.name })).sort((a, b) => a.name.localeCompare(b.name));
    },
    staleTime: 60_000,
  });
}
