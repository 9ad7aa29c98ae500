import { describe, expect, it } from "vitest";
import { newTrigger, sentenceCase, triggerForm, type UnionUiOptions } from "./schema";
import { fixtureTriggerType } from "./testing";

type Props = Record<string, Record<string, unknown>>;

describe("triggerForm", () => {
  it("draws a schedule's fields without its type, nullable fields as plain optional ones, in a useful order", () => {
    const { schema, uiSchema } = triggerForm(fixtureTriggerType("schedule"), { zones: ["Europe/Berlin", "UTC"] });
    const props = schema.properties as Props;
    expect(props.type).toBeUndefined();
    expect(schema.required).toBeUndefined();
    expect(props.every_seconds).toMatchObject({ type: "integer", minimum: 1, title: "Every N seconds" });
    expect(props.every_seconds).not.toHaveProperty("default");
    expect(props.cron).toMatchObject({ type: "string", title: "Cron expression", examples: ["*/5 * * * *", "0 9 * * MON-FRI", "*/10 * * * * *"] });
    expect(props.timezone).toMatchObject({ default: "UTC", examples: ["Europe/Berlin", "UTC"] });
    expect(props.catch_up).toMatchObject({ enum: ["none", "latest", "all"], default: "latest" });
    // Read in the schedule's zone: typed as text, not turned into UTC by a date picker.
    expect(props.start_at).not.toHaveProperty("format");
    expect(uiSchema.start_at).toMatchObject({ "ui:placeholder": "e.g. 2026-12-24T09:00" });
    expect(uiSchema.inputs).toMatchObject({ "ui:field": "keyValue", "ui:options": { valueKind: "any" } });
    expect(uiSchema["ui:order"]).toEqual(["cron", "every_seconds", "timezone", "catch_up", "start_at", "end_at", "inputs", "id", "*"]);
  });

  it("draws a webhook's auth as a union of its variants and its methods as checkboxes", () => {
    const { schema, uiSchema } = triggerForm(fixtureTriggerType("webhook"));
    const props = schema.properties as Props;
    expect(schema.required).toEqual(["path", "auth"]);
    expect(props.path).not.toHaveProperty("examples");
    expect(uiSchema.path).toMatchObject({ "ui:placeholder": "e.g. new-signup" });
    expect(props.methods).toMatchObject({ uniqueItems: true, default: ["POST"], items: { enum: ["GET", "POST", "PUT", "PATCH", "DELETE"] } });
    expect(uiSchema.methods).toMatchObject({ "ui:widget": "checkboxes" });
    expect(props.auth).toMatchObject({ type: "object", title: "Authentication" });
    expect(props.auth).not.toHaveProperty("oneOf");
    const options = (uiSchema.auth as { "ui:options": UnionUiOptions })["ui:options"];
    expect(uiSchema.auth).toMatchObject({ "ui:field": "union" });
    expect(options.discriminator).toBe("type");
    expect(options.options.map((o) => [o.value, o.label])).toEqual([
      ["none", "None: anyone with the URL"],
      ["token", "Shared token in a header"],
      ["hmac", "HMAC signature of the body"],
    ]);
    const hmac = options.options[2]!;
    const hmacProps = hmac.schema.properties as Props;
    expect(hmacProps.type).toBeUndefined();
    expect(hmac.schema.required).toEqual(["credential"]);
    expect(hmacProps.timestamp_header).toMatchObject({ type: "string", title: "Timestamp header" });
    // Defaults inside a variant are not filled in by rjsf: shown as placeholders instead.
    expect(hmac.uiSchema.header).toMatchObject({ "ui:placeholder": "default: X-Hub-Signature-256" });
    expect(options.options[0]!.schema.properties).toEqual({});
    // Without stored secrets to suggest, a credential is a plain name.
    expect((hmac.schema.properties as Props).credential).not.toHaveProperty("examples");
    const suggested = triggerForm(fixtureTriggerType("webhook"), { credentials: ["github", "stripe"] }).uiSchema.auth as { "ui:options": UnionUiOptions };
    expect((suggested["ui:options"].options[1]!.schema.properties as Props).credential).toMatchObject({ examples: ["github", "stripe"] });
  });

  it("writes titles in sentence case, acronyms kept", () => {
    expect(sentenceCase("Max Body Bytes")).toBe("Max body bytes");
    expect(sentenceCase("HTTP Method")).toBe("HTTP method");
  });
});

describe("newTrigger", () => {
  it("starts a schedule daily at nine in the browser's zone and a webhook at a free path from the workflow's name", () => {
    expect(newTrigger("schedule", { timezone: "Europe/Berlin" })).toEqual({ type: "schedule", cron: "0 9 * * *", timezone: "Europe/Berlin" });
    expect(newTrigger("webhook", { workflowName: "New sign-ups!", taken: ["new-sign-ups"] })).toEqual({
      type: "webhook",
      path: "new-sign-ups-2",
      methods: ["POST"],
      auth: { type: "none" },
    });
    expect(newTrigger("webhook")).toMatchObject({ path: "hook" });
    expect(newTrigger("email")).toEqual({ type: "email" });
  });
});
