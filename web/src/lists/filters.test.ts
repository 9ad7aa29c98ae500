import { describe, expect, it } from "vitest";
import {
  parseRunFilters,
  parseWorkflowFilters,
  runFiltersToParams,
  workflowFiltersToParams,
  workflowSearchQuery,
} from "./filters";

describe("run filters in the URL", () => {
  it("parses status and a 1-based page", () => {
    expect(parseRunFilters(new URLSearchParams("status=error&page=3"))).toEqual({ status: "error", trigger: null, page: 2 });
    expect(parseRunFilters(new URLSearchParams("trigger=webhook"))).toEqual({ status: null, trigger: "webhook", page: 0 });
  });

  it("ignores unknown statuses and bad pages", () => {
    expect(parseRunFilters(new URLSearchParams("status=exploded&page=-2"))).toEqual({ status: null, trigger: null, page: 0 });
    expect(parseRunFilters(new URLSearchParams("page=abc&trigger=carrier-pigeon"))).toEqual({ status: null, trigger: null, page: 0 });
  });

  it("writes only what differs from the defaults, and round-trips", () => {
    expect(runFiltersToParams({ status: null, trigger: null, page: 0 }).toString()).toBe("");
    const params = runFiltersToParams({ status: "dead", trigger: "schedule", page: 1 });
    expect(params.toString()).toBe("status=dead&trigger=schedule&page=2");
    expect(parseRunFilters(params)).toEqual({ status: "dead", trigger: "schedule", page: 1 });
  });
});

describe("workflow filters in the URL", () => {
  it("round-trips the search and page", () => {
    const params = workflowFiltersToParams({ q: "sign ups", page: 2 });
    expect(params.toString()).toBe("q=sign+ups&page=3");
    expect(parseWorkflowFilters(params)).toEqual({ q: "sign ups", page: 2 });
    expect(workflowFiltersToParams({ q: "  ", page: 0 }).toString()).toBe("");
  });
});

describe("workflowSearchQuery", () => {
  it("sends the trimmed text, and nothing for a blank search", () => {
    expect(workflowSearchQuery("  Nightly 50%_ ")).toBe("Nightly 50%_");
    expect(workflowSearchQuery("   ")).toBeUndefined();
    expect(workflowSearchQuery("")).toBeUndefined();
  });
});
