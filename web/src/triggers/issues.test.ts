import { describe, expect, it } from "vitest";
import { settingsIssues, triggerErrorSchema } from "./issues";
import { triggerForm } from "./schema";
import { fixtureTriggerType } from "./testing";

describe("settingsIssues", () => {
  it("sorts trigger, list and error workflow problems; leaves node problems out", () => {
    const sorted = settingsIssues([
      { node_id: null, field: "triggers[0].cron", message: "bad cron" },
      { node_id: null, field: "triggers.1.auth.credential", message: "no credential" },
      { node_id: null, field: "triggers[1]", message: "the same schedule as triggers[0]" },
      { node_id: null, field: "triggers", message: "too many" },
      { node_id: null, field: "error_workflow_id", message: "no workflow with the id 'x'" },
      { node_id: "ai", field: "config.prompt", message: "required" },
      { node_id: null, field: "name", message: "too long" },
    ]);
    expect(sorted).toEqual({
      byTrigger: {
        0: [{ field: "cron", message: "bad cron" }],
        1: [
          { field: "auth.credential", message: "no credential" },
          { field: null, message: "the same schedule as triggers[0]" },
        ],
      },
      list: ["too many"],
      errorWorkflow: ["no workflow with the id 'x'"],
    });
  });
});

describe("triggerErrorSchema", () => {
  it("puts each problem on its field, a union's on the variant's field, the rest aside", () => {
    const { schema, uiSchema } = triggerForm(fixtureTriggerType("webhook"));
    const { errors, other } = triggerErrorSchema(
      [
        { field: "path", message: "String should match pattern" },
        { field: "methods[1]", message: "Input should be 'GET', 'POST'" },
        { field: "auth.credential", message: "no credential named gh" },
        { field: "auth.type", message: "use one of: none, token, hmac" },
        { field: "crn", message: "Extra inputs are not permitted" },
        { field: null, message: "whole trigger" },
      ],
      schema,
      uiSchema,
    );
    expect(errors).toEqual({
      path: { __errors: ["String should match pattern"] },
      methods: { __errors: ["Input should be 'GET', 'POST'"] },
      auth: { credential: { __errors: ["no credential named gh"] }, __errors: ["type: use one of: none, token, hmac"] },
    });
    expect(other).toEqual(["crn: Extra inputs are not permitted", "whole trigger"]);
  });
});
