import { describe, expect, it } from "vitest";
import { inputsTemplate, parseInputs } from "./runInputs";

describe("inputsTemplate", () => {
  it("reads names, declarations and maps", () => {
    expect(inputsTemplate(["user_name", "email"])).toEqual({ user_name: "", email: "" });
    expect(inputsTemplate([{ name: "n", default: 3 }, { name: "m" }, 7])).toEqual({ n: 3, m: "" });
    expect(inputsTemplate({ a: 1, b: { type: "string", default: "x" } })).toEqual({ a: 1, b: "x" });
    expect(inputsTemplate(undefined)).toEqual({});
  });
});

describe("parseInputs", () => {
  it("accepts an object, or nothing", () => {
    expect(parseInputs('{"a": 1}')).toEqual({ inputs: { a: 1 } });
    expect(parseInputs("  ")).toEqual({ inputs: {} });
  });

  it("refuses other JSON and broken text", () => {
    expect(parseInputs("[1]")).toMatchObject({ error: expect.stringMatching(/JSON object/) });
    expect(parseInputs("{")).toMatchObject({ error: expect.stringMatching(/not valid JSON/) });
  });
});
