// Vitest setup, run before each test file's imports (node and jsdom environments alike).
import { configure } from "@testing-library/dom";
import { afterEach } from "vitest";
import { fakeApi, fakeFetch } from "./testing/fakeApi";

// Generous waits, because the suite also runs on a loaded 2-core CI.
// `findBy*`/`waitFor` poll a condition until it holds; their deadline is a safety net,
// not a timing claim (timings belong in bench/).
configure({ asyncUtilTimeout: 15_000 });

// No test reaches a network: `fetch` is the fake API (testing/fakeApi.ts). Installed
// here, before the app's client module captures it; a test sets `fakeApi.handler`.
// (Tests of the client itself pass their own `fetch`.)
globalThis.fetch = fakeFetch;

// React Testing Library only where there is a DOM (its auto-cleanup needs a global
// `afterEach`, which Vitest does not define).
const rtl = typeof document === "undefined" ? null : await import("@testing-library/react");

afterEach(() => {
  rtl?.cleanup();
  fakeApi.reset();
});
