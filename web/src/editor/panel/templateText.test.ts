import { describe, expect, it } from "vitest";
import { insideTemplate, minimalChange } from "./templateText";

describe("insideTemplate", () => {
  it("is true only between an open {{ or {% and its close", () => {
    expect(insideTemplate("Hello {{ na")).toBe(true);
    expect(insideTemplate("Hello {{ name }} and ")).toBe(false);
    expect(insideTemplate("{% if x")).toBe(true);
    expect(insideTemplate("plain text")).toBe(false);
    expect(insideTemplate("{{ a }} {{ outputs.")).toBe(true);
  });
});

describe("minimalChange", () => {
  it("replaces only the part that differs", () => {
    expect(minimalChange("Hello world", "Hello brave world")).toEqual({ from: 6, to: 6, insert: "brave " });
    expect(minimalChange("abc", "abc")).toBeNull();
    expect(minimalChange("abc", "")).toEqual({ from: 0, to: 3, insert: "" });
    expect(minimalChange("aaa", "aa")).toEqual({ from: 2, to: 3, insert: "" });
  });
});
