// A fake ductwork API for tests: the Vitest setup file (test-setup.ts) installs
// `fakeFetch` as `globalThis.fetch` before any test file's imports run, since the app's
// client (api/client.ts) captures `fetch` when its module loads. A test sets
// `fakeApi.handler`; every request is recorded in `fakeApi.requests`; the setup file
// resets both after each test. No DOM and no React here: node-environment tests load it.

/** Answers a request, or `undefined` for a bare 404. */
export type FakeHandler = (request: Request) => Response | undefined | Promise<Response | undefined>;

export interface FakeApi {
  handler: FakeHandler;
  /** Every request so far, oldest first (clones: their bodies can still be read). */
  requests: Request[];
  /** Forgets the handler and the requests (the setup file calls it after each test). */
  reset(): void;
}

// On globalThis, so the setup file's fetch and a test file share one state even if a
// module graph is evaluated twice.
const KEY = Symbol.for("ductwork.test.fakeApi");
const store = globalThis as typeof globalThis & { [KEY]?: FakeApi };

function createFakeApi(): FakeApi {
  const api: FakeApi = {
    handler: () => undefined,
    requests: [],
    reset() {
      api.handler = () => undefined;
      api.requests.length = 0;
    },
  };
  return api;
}

export const fakeApi: FakeApi = (store[KEY] ??= createFakeApi());

/** A `fetch` that records each request and answers it with `fakeApi.handler`. */
export const fakeFetch = (async (input: RequestInfo | URL, init?: RequestInit) => {
  const request = input instanceof Request ? input : new Request(input, init);
  fakeApi.requests.push(request.clone());
  return (await fakeApi.handler(request)) ?? new Response(null, { status: 404 });
}) as typeof fetch;

/** A JSON response. */
export function json(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

/** The requests so far with this method and path (the query string aside). */
export function requestsTo(method: string, path: string): Request[] {
  return fakeApi.requests.filter((r) => r.method === method && new URL(r.url).pathname === path);
}
