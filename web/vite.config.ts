import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// The API the dev server forwards to (`ductwork serve` on its default address).
const API = process.env.DUCTWORK_API_URL ?? "http://127.0.0.1:8000";

// Every API prefix; /ui/ itself is served by Vite. The Host header is kept (no
// changeOrigin): ductwork accepts loopback names on any port, and a WebSocket's
// Origin must match its Host for the session cookie to be used.
const API_PREFIXES = [
  "/workflows",
  "/auth",
  "/setup",
  "/node-types",
  "/trigger-types",
  "/hooks",
  "/resume",
  "/credentials",
  "/credential-types",
  "/ai",
  "/audit",
  "/health",
  "/metrics",
  "/openapi.json",
  "/docs",
];

export default defineConfig({
  base: "/ui/",
  plugins: [react()],
  build: {
    // Served by ductwork under /ui/ and shipped in the wheel (package-data).
    outDir: "../src/ductwork/ui_dist",
    emptyOutDir: true,
    sourcemap: false,
    // The node settings form (rjsf + ajv + CodeMirror, ~720 KB raw / 234 KB gzipped) is a
    // chunk of its own, fetched on idle after the canvas; it is not on the first load.
    chunkSizeWarningLimit: 800,
  },
  server: {
    proxy: {
      ...Object.fromEntries(API_PREFIXES.map((prefix) => [prefix, { target: API }])),
      "/ws": { target: API, ws: true },
    },
  },
  test: {
    environment: "node",
    include: ["src/**/*.test.{ts,tsx}", "examples/**/*.test.ts"],
    setupFiles: ["src/test-setup.ts"],
    testTimeout: 60_000,
  },
});
