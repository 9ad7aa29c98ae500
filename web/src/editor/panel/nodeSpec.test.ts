import { describe, expect, it } from "vitest";
import type { NodeSpec } from "../../canvas/definition";
import { RETRY_DEFAULTS, withField, withRetry } from "./nodeSpec";

const node: NodeSpec = { id: "a", type: "delay", on_error: "fail", config: { delay_seconds: 1 } };

describe("withRetry", () => {
  it("writes a whole policy and removes it when back at the defaults", () => {
    const retried = withRetry(node, "max_attempts", 3);
    expect(retried.retry).toEqual({ ...RETRY_DEFAULTS, max_attempts: 3 });
    expect(withRetry(retried, "max_attempts", undefined)).not.toHaveProperty("retry");
  });
});

describe("withField", () => {
  it("sets or removes a key without touching the rest", () => {
    expect(withField(node, "timeout_seconds", 5)).toEqual({ ...node, timeout_seconds: 5 });
    expect(withField({ ...node, name: "x" }, "name", undefined)).toEqual(node);
  });
});
