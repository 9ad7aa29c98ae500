// Rendering routes for jsdom tests: a memory router at `path`, under a fresh
// QueryClient (no retries), so no test sees another's cache. The setup file unmounts
// after each test. Pair with ./fakeApi for the server.
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render } from "@testing-library/react";
import { type RouteObject, RouterProvider, createMemoryRouter } from "react-router";

// jsdom has no ResizeObserver, which React Flow needs to measure its pane.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;

/** Renders `routes` at `path`; returns the router (its `state.location`, `navigate`). */
export function renderRoutes(routes: RouteObject[], path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return router;
}
