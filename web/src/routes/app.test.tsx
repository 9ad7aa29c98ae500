// @vitest-environment jsdom
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { cleanup, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { RouterProvider, createMemoryRouter } from "react-router";
import { afterEach, describe, expect, it, vi } from "vitest";
import { routes } from "../App";
import { safeNext } from "./SignIn";

type Handler = (request: Request) => Response | undefined;

// jsdom has no ResizeObserver, which React Flow needs to measure its pane.
globalThis.ResizeObserver ??= class {
  observe() {}
  unobserve() {}
  disconnect() {}
} as unknown as typeof ResizeObserver;

// The app's client captures `fetch` when its module loads: install the stub first.
const server = vi.hoisted(() => {
  const state = { handler: (() => undefined) as Handler, requests: [] as Request[] };
  globalThis.fetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    state.requests.push(request);
    return state.handler(request) ?? new Response(null, { status: 404 });
  }) as typeof fetch;
  return state;
});

function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

const ME = { kind: "user", role: "admin", name: "ada@example.com", permissions: [], session: true };
const WORKFLOW = {
  id: "w1",
  _id: "w1",
  name: "Summarise signups",
  version: 3,
  status: "active",
  created_at: "2026-01-01T00:00:00+00:00",
  updated_at: "2026-01-01T00:00:00+00:00",
};

function renderAt(path: string) {
  const router = createMemoryRouter(routes, { initialEntries: [path] });
  const client = new QueryClient({ defaultOptions: { queries: { retry: false } } });
  render(
    <QueryClientProvider client={client}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return router;
}

afterEach(() => {
  cleanup();
  server.requests.length = 0;
  server.handler = () => undefined;
});

describe("sign-in", () => {
  it("labels every field, the API key one exactly so", () => {
    renderAt("/sign-in");
    expect(screen.getByLabelText("Email")).toBeTruthy();
    expect(screen.getByLabelText("Password")).toBeTruthy();
    expect(screen.getByLabelText("API key")).toBeTruthy();
    expect(screen.getByRole("button", { name: "Sign in" })).toBeTruthy();
  });

  it("signs in with an API key and goes back where the user was", async () => {
    let body: unknown = null;
    server.handler = (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/auth/login") return json({ kind: "key", role: "editor", csrf_token: "t", expires_at: "x" });
      if (path === "/auth/me") return json(ME);
      if (path === "/workflows/") return json([WORKFLOW]);
      return undefined;
    };
    const router = renderAt("/sign-in?next=%2F");
    fireEvent.change(screen.getByLabelText("API key"), { target: { value: "dw_key" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await screen.findByRole("link", { name: "Summarise signups" });
    expect(router.state.location.pathname).toBe("/");
    const login = server.requests.find((r) => new URL(r.url).pathname === "/auth/login");
    body = await login?.clone().json();
    expect(body).toEqual({ api_key: "dw_key" });
  });

  it("shows a failed sign-in on the form and stays there", async () => {
    server.handler = () => json({ detail: "wrong email or password, or the API key is not valid" }, 401);
    const router = renderAt("/sign-in");
    fireEvent.change(screen.getByLabelText("Email"), { target: { value: "a@b.c" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "nope" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect((await screen.findByRole("alert")).textContent).toMatch(/wrong email or password/);
    expect(router.state.location.pathname).toBe("/sign-in");
  });

  it("only follows `next` inside the app", () => {
    expect(safeNext("/workflows/w1")).toBe("/workflows/w1");
    expect(safeNext("//evil.example")).toBe("/");
    expect(safeNext("https://evil.example")).toBe("/");
    expect(safeNext(null)).toBe("/");
  });
});

describe("canvas routes", () => {
  it("load lazily", async () => {
    server.handler = (request) => (new URL(request.url).pathname === "/auth/me" ? json(ME) : undefined);
    renderAt("/workflows/new");
    expect((await screen.findByRole("heading", { name: "New workflow" })).tagName).toBe("H1");
  });
});

describe("workflows list", () => {
  it("shows name, version and status from GET /workflows/", async () => {
    server.handler = (request) => {
      const path = new URL(request.url).pathname;
      if (path === "/auth/me") return json(ME);
      if (path === "/workflows/") return json([WORKFLOW]);
      return undefined;
    };
    renderAt("/");
    const link = await screen.findByRole("link", { name: "Summarise signups" });
    expect(link.getAttribute("href")).toBe("/workflows/w1");
    const row = link.closest("tr");
    expect(row?.textContent).toContain("3");
    expect(row?.textContent).toContain("active");
    expect(screen.getByRole("button", { name: "Sign out" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Runs" }).getAttribute("href")).toBe("/runs");
    expect(screen.getByRole("button", { name: "Theme" })).toBeTruthy();
  });

  it("a 401 anywhere sends the user to sign in, remembering the page", async () => {
    server.handler = () => json({ detail: "not authenticated" }, 401);
    const router = renderAt("/runs/e1?tab=logs");
    await waitFor(() => expect(router.state.location.pathname).toBe("/sign-in"));
    expect(router.state.location.search).toBe(`?next=${encodeURIComponent("/runs/e1?tab=logs")}`);
    expect(screen.getByLabelText("API key")).toBeTruthy();
  });
});
