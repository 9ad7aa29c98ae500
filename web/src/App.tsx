import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useState } from "react";
import { type RouteObject, RouterProvider, createBrowserRouter } from "react-router";
import { UnauthorizedError } from "./api/client";
import { Root } from "./routes/Root";
import { Shell } from "./routes/Shell";
import { SignIn } from "./routes/SignIn";
import { NotFound } from "./routes/NotFound";
import { RunsList } from "./routes/RunsList";
import { WorkflowsList } from "./routes/WorkflowsList";

export const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // A 401 is handled by the redirect to sign-in; retrying it only delays that.
      retry: (failures, error) => failures < 2 && !(error instanceof UnauthorizedError),
      refetchOnWindowFocus: false,
    },
  },
});

// The canvas routes (editor, run view) carry React Flow: loaded on first visit only.
const canvas = () => import("./routes/canvas/CanvasRoutes");

export const routes: RouteObject[] = [
  {
    element: <Root />,
    // Shown while a lazy route's code loads on the first page of a visit.
    hydrateFallbackElement: <p role="status">Loading…</p>,
    children: [
      { path: "sign-in", element: <SignIn /> },
      {
        element: <Shell />,
        children: [
          { index: true, element: <WorkflowsList /> },
          { path: "workflows/new", lazy: async () => ({ Component: (await canvas()).NewWorkflow }) },
          { path: "runs", element: <RunsList /> },
          { path: "workflows/:id/runs", element: <RunsList /> },
          { path: "workflows/:id", lazy: async () => ({ Component: (await canvas()).WorkflowEditor }) },
          { path: "runs/:executionId", lazy: async () => ({ Component: (await canvas()).RunView }) },
          { path: "*", element: <NotFound /> },
        ],
      },
    ],
  },
];

export function App() {
  const [router] = useState(() => createBrowserRouter(routes, { basename: "/ui" }));
  return (
    <QueryClientProvider client={queryClient}>
      <RouterProvider router={router} />
    </QueryClientProvider>
  );
}
