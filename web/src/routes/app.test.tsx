// @vitest-environment jsdom
import { fireEvent, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { routes } from "../App";
import { fakeApi, json } from "../testing/fakeApi";
import { renderRoutes } from "../testing/render";
import { safeNext } from "./SignIn";

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

const renderAt = (path: string) => renderRoutes(routes, path);

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
    fakeApi.handler = (request) => {
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
    const login = fakeApi.requests.find((r) => new URL(r.url).pathname === "/auth/login");
    body = await login?.clone().json();
    expect(body).toEqual({ api_key: "dw_key" });
  });

  it("shows a failed sign-in on the form and stays there", async () => {
    fakeApi.handler = () => json({ detail: "wrong email or password, or the API key is not valid" }, 401);
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
    fakeApi.handler = (request) => (new URL(request.url).pathname === "/auth/me" ? json(ME) : undefined);
    renderAt("/workflows/new");
    expect((await screen.findByRole("heading", { name: "New workflow" })).tagName).toBe("H1");
  });
});

describe("workflows list", () => {
  it("shows name, version and status from GET /workflows/", async () => {
    fakeApi.handler = (request) => {
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
    fakeApi.handler = () => json({ detail: "not authenticated" }, 401);
    const router = renderAt("/runs/e1?tab=logs");
    await waitFor(() => expect(router.state.location.pathname).toBe("/sign-in"));
    expect(router.state.location.search).toBe(`?next=${encodeURIComponent("/runs/e1?tab=logs")}`);
    // The router moves before React commits the sign-in page: wait for it.
    expect(await screen.findByLabelText("API key")).toBeTruthy();
  });
});
