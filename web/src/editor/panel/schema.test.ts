import { describe, expect, it } from "vitest";
import { freeFields, humanTitle, uiSchemaFor } from "./schema";
import { fixtureType } from "./testing";

function forType(type: string) {
  const nodeType = fixtureType(type);
  return uiSchemaFor(nodeType.config_schema, nodeType);
}

describe("uiSchemaFor", () => {
  it("turns anyOf [X, null] into an optional X without a null default", () => {
    const { schema, uiSchema } = forType("ai-processor");
    const props = schema.properties as Record<string, Record<string, unknown>>;
    expect(props.model).toMatchObject({ type: "string", title: "Model" });
    expect(props.model).not.toHaveProperty("anyOf");
    expect(props.model).not.toHaveProperty("default");
    expect(props.cache_ttl_seconds).toMatchObject({ type: "integer", minimum: 0, title: "Cache TTL Seconds" });
    expect(uiSchema.model).toMatchObject({ "ui:widget": "template", "ui:placeholder": "e.g. google/gemini-2.0-flash-exp:free" });
    expect(schema.required).toEqual(["prompt"]);
    // Not to be confused with the node's own "Timeout seconds".
    expect(props.timeout_seconds).toMatchObject({ title: "Request time limit (seconds)", exclusiveMinimum: 0 });
  });

  it("names a wait node's timeout for what it is (not a request's time limit)", () => {
    const wait = { type: "wait", expression_fields: [], config_schema: { properties: { timeout_seconds: { title: "Timeout Seconds", type: "number" } } } };
    expect((uiSchemaFor(wait.config_schema, wait).schema.properties as Record<string, { title: string }>).timeout_seconds?.title).toBe("Wait at most (seconds)");
  });

  it("keeps numbers with their bounds and defaults, enums as enums", () => {
    const ai = forType("ai-processor").schema.properties as Record<string, Record<string, unknown>>;
    expect(ai.temperature).toMatchObject({ type: "number", minimum: 0, maximum: 2, default: 0.7 });
    const webhook = forType("webhook");
    expect((webhook.schema.properties as Record<string, unknown>).method).toMatchObject({ enum: ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] });
    expect(webhook.uiSchema.method).toBeUndefined();
  });

  it("draws prompts as multi-line templates and expression fields in expression mode", () => {
    expect(forType("ai-processor").uiSchema.prompt).toMatchObject({ "ui:widget": "template", "ui:options": { mode: "template", multiline: true } });
    expect(forType("condition").uiSchema.condition).toMatchObject({
      "ui:widget": "template",
      "ui:options": { mode: "expression", multiline: false },
      "ui:placeholder": "e.g. status == 'active'",
    });
  });

  it("draws string maps as key-value rows and unions as alternatives", () => {
    const webhook = forType("webhook");
    expect(webhook.uiSchema.headers).toEqual({ "ui:field": "keyValue", "ui:options": { mode: "template", valueKind: "string" } });
    expect(webhook.uiSchema.query).toMatchObject({ "ui:field": "alternatives", "ui:options": { kinds: ["map", "text"] } });
    const query = (webhook.schema.properties as Record<string, Record<string, unknown>>).query;
    expect(query).not.toHaveProperty("anyOf");
    expect(query).not.toHaveProperty("type");
    expect(forType("email").uiSchema.to).toMatchObject({ "ui:field": "alternatives", "ui:options": { kinds: ["text", "list"] } });
    // A transformer's mapping values are expressions.
    expect(forType("transformer").uiSchema.mapping).toMatchObject({ "ui:field": "keyValue", "ui:options": { mode: "expression" } });
  });

  it("draws free values as JSON and lists with add/remove but no reordering", () => {
    const end = forType("end");
    expect(end.uiSchema.output).toEqual({ "ui:field": "json" });
    expect((end.schema.properties as Record<string, unknown>).output).not.toHaveProperty("default");
    expect(freeFields(forType("webhook").uiSchema)).toEqual(new Set(["body"]));
    const status = forType("webhook");
    expect((status.schema.properties as Record<string, Record<string, unknown>>).expected_status).toMatchObject({ type: "array", items: { type: "integer" } });
    expect(status.uiSchema.expected_status).toMatchObject({ "ui:options": { orderable: false } });
  });

  it("drops the root title and description and hides the submit button", () => {
    const { schema, uiSchema } = forType("end");
    expect(schema).not.toHaveProperty("title");
    expect(schema).not.toHaveProperty("description");
    expect(uiSchema["ui:submitButtonOptions"]).toEqual({ norender: true });
  });

  it("copes with a missing schema", () => {
    expect(uiSchemaFor(undefined).schema).toEqual({ type: "object", properties: {} });
  });
});

describe("humanTitle", () => {
  it("spells acronyms in capitals", () => {
    expect(humanTitle("Url")).toBe("URL");
    expect(humanTitle("Cache Ttl Seconds")).toBe("Cache TTL Seconds");
    expect(humanTitle("Identity")).toBe("Identity");
  });
});

describe("source code fields", () => {
  it("draws a string with a text/x-* media type in the code editor, whatever its type", () => {
    const form = uiSchemaFor({ properties: { source: { type: "string", title: "Source", contentMediaType: "text/x-python" } } }, { expression_fields: [], type: "other" });
    expect(form.uiSchema.source).toEqual({ "ui:widget": "code" });
  });
});
