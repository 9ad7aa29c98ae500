import { describe, expect, it } from "vitest";
import { CSRF_HEADER, UNAUTHORIZED_EVENT, createApiClient, readCookie } from "./client";

function recorder(status = 200, body: unknown = []) {
  const requests: Request[] = [];
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = input instanceof Request ? input : new Request(input, init);
    requests.push(request);
    return new Response(status === 204 ? null : JSON.stringify(body), {
      status,
      headers: { "Content-Type": "application/json" },
    });
  };
  return { requests, fetch: fetch as typeof globalThis.fetch };
}

function setup(status = 200, body: unknown = []) {
  const { requests, fetch } = recorder(status, body);
  const events = new EventTarget();
  let unauthorized = 0;
  events.addEventListener(UNAUTHORIZED_EVENT, () => {
    unauthorized += 1;
  });
  const client = createApiClient({
    baseUrl: "http://ductwork.test",
    fetch,
    events,
    cookies: () => "other=1; dw_csrf=abc%2Fdef; dw_session=nope",
  });
  return { client, requests, count: () => unauthorized };
}

describe("readCookie", () => {
  it("finds a cookie among others and decodes it", () => {
    expect(readCookie("a=1; dw_csrf=x%3Dy", "dw_csrf")).toBe("x=y");
    expect(readCookie("a=1", "dw_csrf")).toBeNull();
    expect(readCookie("", "dw_csrf")).toBeNull();
  });
});

describe("the API client", () => {
  it("sends cookies and no CSRF header on a GET", async () => {
    const { client, requests } = setup();
    await client.GET("/workflows/");
    expect(requests[0]?.credentials).toBe("include");
    expect(requests[0]?.headers.get(CSRF_HEADER)).toBeNull();
  });

  it("echoes the dw_csrf cookie on unsafe methods", async () => {
    const { client, requests } = setup(204, {});
    await client.POST("/auth/logout");
    await client.DELETE("/workflows/{workflow_id}", { params: { path: { workflow_id: "w1" } } });
    expect(requests.map((r) => r.headers.get(CSRF_HEADER))).toEqual(["abc/def", "abc/def"]);
  });

  it("announces a 401 so the app can send the user to sign in", async () => {
    const { client, count } = setup(401, { detail: "not authenticated" });
    const { error, response } = await client.GET("/workflows/");
    expect(response.status).toBe(401);
    expect(error).toEqual({ detail: "not authenticated" });
    expect(count()).toBe(1);
  });

  it("does not redirect on a failed sign-in (the form shows the error)", async () => {
    const { client, count } = setup(401, { detail: "wrong email or password" });
    await client.POST("/auth/login", { body: { email: "a@b.c", password: "x" } });
    expect(count()).toBe(0);
  });

  it("sends an API key as a bearer token, without cookies, when given one", async () => {
    const { requests, fetch } = recorder();
    const client = createApiClient({
      baseUrl: "http://ductwork.test",
      apiKey: "dw_abc_secret",
      fetch,
      events: new EventTarget(),
      cookies: () => "",
    });
    await client.GET("/workflows/executions", { params: { query: { status: "dead" } } });
    await client.POST("/workflows/{workflow_id}/execute", {
      params: { path: { workflow_id: "w1" } },
      body: { inputs: {}, async_execution: true },
    });
    expect(requests.map((r) => r.headers.get("Authorization"))).toEqual([
      "Bearer dw_abc_secret",
      "Bearer dw_abc_secret",
    ]);
    expect(requests.map((r) => r.credentials)).toEqual(["omit", "omit"]);
    expect(requests[0]?.url).toBe("http://ductwork.test/workflows/executions?status=dead");
  });

  it("sends no Authorization header without an API key", async () => {
    const { client, requests } = setup();
    await client.GET("/workflows/");
    expect(requests[0]?.headers.get("Authorization")).toBeNull();
  });
});
