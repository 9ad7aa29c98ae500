import { describe, expect, it } from "vitest";
import type { RJSFSchema } from "@rjsf/utils";
import { matches, structuralValidator } from "./structuralValidator";

const root: RJSFSchema = {
  type: "object",
  $defs: {
    Schema: {
      type: "object",
      properties: { type: { const: "json_schema" }, json_schema: { type: "object" } },
      required: ["type", "json_schema"],
      additionalProperties: false,
    },
    Plain: { type: "object", properties: { type: { enum: ["text", "json_object"] } } },
  },
  properties: {
    stop: { anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }, { type: "null" }] },
    response_format: { anyOf: [{ $ref: "#/$defs/Schema" }, { $ref: "#/$defs/Plain" }, { type: "null" }] },
  },
};

describe("structural validator", () => {
  it("picks the anyOf option a value fits", () => {
    const stop = ((root.properties as Record<string, RJSFSchema>).stop?.anyOf ?? []) as RJSFSchema[];
    expect(stop.map((o) => matches(o, "END", root))).toEqual([true, false, false]);
    expect(stop.map((o) => matches(o, ["a", "b"], root))).toEqual([false, true, false]);
    expect(stop.map((o) => matches(o, [1], root))).toEqual([false, false, false]);
    expect(stop.map((o) => matches(o, null, root))).toEqual([false, false, true]);
  });

  it("follows local $refs, required, const and closed objects", () => {
    const schemaRef: RJSFSchema = { $ref: "#/$defs/Schema" };
    expect(structuralValidator.isValid(schemaRef, { type: "json_schema", json_schema: {} }, root)).toBe(true);
    expect(structuralValidator.isValid(schemaRef, { type: "json_object" }, root)).toBe(false);
    expect(structuralValidator.isValid(schemaRef, { type: "json_schema", json_schema: {}, x: 1 }, root)).toBe(false);
    expect(structuralValidator.isValid({ $ref: "#/$defs/Plain" }, { type: "text" }, root)).toBe(true);
    expect(structuralValidator.isValid({ $ref: "#/$defs/Plain" }, { type: "yaml" }, root)).toBe(false);
  });

  it("reports no errors of its own (the server's are the ones shown)", () => {
    expect(structuralValidator.validateFormData({ stop: 5 }, root).errors).toEqual([]);
  });
});
