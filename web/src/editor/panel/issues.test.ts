import { describe, expect, it } from "vitest";
import { fieldErrors } from "./issues";
import { uiSchemaFor } from "./schema";
import { fixtureType } from "./testing";

const webhook = uiSchemaFor(fixtureType("webhook").config_schema).schema;

describe("fieldErrors", () => {
  it("puts config problems at their field in an rjsf error schema", () => {
    const errors = fieldErrors(
      [
        { node_id: "w", field: "config.url", message: "Field required" },
        { node_id: "w", field: "config.headers.X.Trace", message: "bad header" },
        { node_id: "w", field: "config.expected_status[1]", message: "not a status" },
      ],
      webhook,
    );
    expect(errors.config).toEqual({
      url: { __errors: ["Field required"] },
      headers: { "X.Trace": { __errors: ["bad header"] } },
      expected_status: { 1: { __errors: ["not a status"] } },
    });
    expect(errors.other).toEqual([]);
  });

  it("puts node-level problems under their field", () => {
    const errors = fieldErrors([
      { node_id: "w", field: "retry.max_attempts", message: "at most 10" },
      { node_id: "w", field: "retry.max_attempts", message: "again" },
      { node_id: "w", field: "timeout_seconds", message: "too long" },
    ]);
    expect(errors.node).toEqual({ "retry.max_attempts": ["at most 10", "again"], timeout_seconds: ["too long"] });
  });

  it("lists problems no field shows", () => {
    const errors = fieldErrors(
      [
        { node_id: "w", field: "type", message: "unknown node type" },
        { node_id: "w", field: "config.nope", message: "Extra inputs are not permitted" },
        { node_id: "w", field: "config", message: "bad config" },
        { node_id: "w", field: null, message: "no route to this node" },
      ],
      webhook,
    );
    expect(errors.other).toEqual([
      "type: unknown node type",
      "config.nope: Extra inputs are not permitted",
      "config: bad config",
      "no route to this node",
    ]);
    expect(errors.config).toEqual({});
  });

  it("reads whole-workflow paths like node paths", () => {
    expect(fieldErrors([{ node_id: "w", field: "nodes[3].config.url", message: "m" }]).config).toEqual({ url: { __errors: ["m"] } });
  });
});
