import { describe, expect, it } from "vitest";
import { jsonEqual, nextConfig } from "./config";
import { uiSchemaFor } from "./schema";
import { fixtureType } from "./testing";

const ai = uiSchemaFor(fixtureType("ai-processor").config_schema).schema;

describe("nextConfig", () => {
  it("drops defaults rjsf filled in that the node did not have", () => {
    const form = { prompt: "Hi", temperature: 0.7, max_tokens: 2048, cache: true, stream: false };
    expect(nextConfig({ prompt: "H" }, form, ai)).toEqual({ prompt: "Hi" });
  });

  it("keeps a key the node had, even at its default, and a changed default", () => {
    expect(nextConfig({ prompt: "Hi", cache: true }, { prompt: "Hi", cache: true, temperature: 0.2 }, ai)).toEqual({
      prompt: "Hi",
      cache: true,
      temperature: 0.2,
    });
  });

  it("removes fields cleared to empty", () => {
    expect(nextConfig({ prompt: "Hi", model: "m", system_prompt: "s" }, { prompt: "Hi", model: undefined, system_prompt: "" }, ai)).toEqual({
      prompt: "Hi",
    });
    const webhook = uiSchemaFor(fixtureType("webhook").config_schema).schema;
    expect(nextConfig({ url: "u", headers: { A: "1" } }, { url: "u", headers: {}, expected_status: [] }, webhook)).toEqual({ url: "u" });
  });

  it("keeps empty values of free JSON fields", () => {
    const end = uiSchemaFor(fixtureType("end").config_schema).schema;
    expect(nextConfig({}, { output: {} }, end, new Set(["output"]))).toEqual({ output: {} });
    expect(nextConfig({}, { output: null }, end, new Set(["output"]))).toEqual({ output: null });
  });
});

describe("jsonEqual", () => {
  it("compares structure, not key order", () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual({ a: 1 }, { a: 1, b: undefined })).toBe(false);
    expect(jsonEqual([1], { 0: 1 })).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
  });
});
