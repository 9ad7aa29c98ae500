// TanStack Query hooks over the typed client: server state lives here, not in components.
import { useQuery } from "@tanstack/react-query";
import { UnauthorizedError, api, errorMessage } from "./client";

/** The error of a failed call as something a query can throw. */
function failure(response: Response, error: unknown, fallback: string): Error {
  if (response.status === 401) return new UnauthorizedError("not signed in");
  return new Error(errorMessage(error, `${fallback} (HTTP ${response.status})`));
}

export function useMe() {
  return useQuery({
    queryKey: ["me"],
    queryFn: async () => {
      const { data, error, response } = await api.GET("/auth/me");
      if (data === undefined) throw failure(response, error, "could not load your account");
      return data;
    },
    staleTime: 60_000,
  });
}

export function useWorkflows() {
  return useQuery({
    queryKey: ["workflows"],
    queryFn: async () => {
      const { data, error, response } = await api.GET("/workflows/", {
        params: { query: { limit: 100 } },
      });
      if (data === undefined) throw failure(response, error, "could not load the workflows");
      return data;
    },
  });
}
