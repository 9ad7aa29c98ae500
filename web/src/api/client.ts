// The typed API client: openapi-fetch over the generated `schema.d.ts`.
//
// The app: same-origin with the session cookie (`credentials: "include"`); unsafe
// methods echo the `dw_csrf` cookie in `X-CSRF-Token` (the server's double-submit
// check). Another app (an external canvas) passes `apiKey` instead: every request
// carries `Authorization: Bearer <key>` and no cookies, so a cross-origin caller needs
// no credentialed CORS and a key request never needs CSRF. Any 401 (but a failed
// sign-in) dispatches UNAUTHORIZED_EVENT on `window`, which the app turns into a
// redirect to the sign-in route.
import createClient, { type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Workflow = Schemas["Workflow"];

export const CSRF_COOKIE = "dw_csrf";
export const CSRF_HEADER = "X-CSRF-Token";
export const UNAUTHORIZED_EVENT = "ductwork:unauthorized";

const UNSAFE_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Paths whose 401 is an answer for the form on screen, not a lost session. */
const NO_REDIRECT_PATHS = new Set(["/auth/login"]);

/** A cookie's value from a `document.cookie` string, or null. */
export function readCookie(cookies: string, name: string): string | null {
  for (const part of cookies.split(";")) {
    const eq = part.indexOf("=");
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) {
      return decodeURIComponent(part.slice(eq + 1).trim());
    }
  }
  return null;
}

export interface ClientOptions {
  baseUrl?: string;
  /** An API key: sent as `Authorization: Bearer <key>` instead of the session cookie. */
  apiKey?: string;
  fetch?: typeof globalThis.fetch;
  /** Where cookies are read from (tests pass a string). */
  cookies?: () => string;
  /** Where the 401 event goes (tests pass their own target). */
  events?: EventTarget;
}

export function authMiddleware(options: Pick<ClientOptions, "cookies" | "events"> = {}): Middleware {
  const cookies = options.cookies ?? (() => (typeof document === "undefined" ? "" : document.cookie));
  const events = (): EventTarget | undefined =>
    options.events ?? (typeof window === "undefined" ? undefined : window);
  return {
    onRequest({ request }) {
      if (UNSAFE_METHODS.has(request.method.toUpperCase())) {
        const token = readCookie(cookies(), CSRF_COOKIE);
        if (token !== null) request.headers.set(CSRF_HEADER, token);
      }
      return request;
    },
    onResponse({ request, response }) {
      if (response.status === 401 && !NO_REDIRECT_PATHS.has(new URL(request.url).pathname)) {
        events()?.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
      }
      return response;
    },
  };
}

/** A typed client for the ductwork API at `baseUrl` (default: the page's origin). */
export function createApiClient(options: ClientOptions = {}) {
  const { apiKey } = options;
  const client = createClient<paths>({
    baseUrl: options.baseUrl ?? globalThis.location?.origin ?? "",
    credentials: apiKey === undefined ? "include" : "omit",
    ...(apiKey === undefined ? {} : { headers: { Authorization: `Bearer ${apiKey}` } }),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
  client.use(authMiddleware(options));
  return client;
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** The app's client (same origin as the page). */
export const api: ApiClient = createApiClient();

/** Thrown by query functions for a 401 (the client has already announced it). */
export class UnauthorizedError extends Error {}

/** The `detail` of an error body, for messages on screen. */
export function errorMessage(error: unknown, fallback: string): string {
  if (error && typeof error === "object" && "detail" in error) {
    const detail = (error as { detail: unknown }).detail;
    if (typeof detail === "string") return detail;
  }
  if (error instanceof Error) return error.message;
  return fallback;
}
