import { describe, expect, it } from "vitest";
import { asTrigger, formatEvery, hookUrl, triggerKinds, triggerSummary } from "./summary";

describe("triggerSummary", () => {
  it("says when a schedule fires", () => {
    expect(triggerSummary({ type: "schedule", cron: "0 9 * * *", timezone: "Europe/Berlin" })).toBe("cron 0 9 * * * (Europe/Berlin)");
    expect(triggerSummary({ type: "schedule", cron: "*/5 * * * *" })).toBe("cron */5 * * * * (UTC)");
    expect(triggerSummary({ type: "schedule", every_seconds: 300 })).toBe("every 5 min");
    expect(triggerSummary({ type: "schedule" })).toBe("no cron or interval yet");
  });

  it("says where and how a webhook answers", () => {
    expect(triggerSummary({ type: "webhook", path: "/new-signup/", auth: { type: "hmac" }, respond: "sync" })).toBe(
      "POST /hooks/new-signup · HMAC signature · sync",
    );
    expect(triggerSummary({ type: "webhook", path: "p", methods: ["GET", "POST"], auth: { type: "none" } })).toBe("GET, POST /hooks/p · no auth · async");
    expect(triggerSummary({ type: "webhook", path: "" })).toBe("no path yet · async");
    expect(triggerSummary({ type: "email", id: "inbox" })).toBe("inbox");
  });

  it("formats intervals and hook URLs", () => {
    expect(formatEvery(1)).toBe("1 s");
    expect(formatEvery(90)).toBe("1 min 30 s");
    expect(formatEvery(93_600)).toBe("1 d 2 h");
    expect(hookUrl("https://flows.example/", "/github/push")).toBe("https://flows.example/hooks/github/push");
  });

  it("reads only objects with a type as triggers", () => {
    expect(asTrigger({ type: "schedule" })).toEqual({ type: "schedule" });
    expect(asTrigger("schedule")).toBeNull();
    expect(asTrigger({ cron: "x" })).toBeNull();
  });

  it("counts a workflow's trigger kinds", () => {
    expect(triggerKinds([{ type: "webhook" }, { type: "schedule" }, { type: "webhook" }, "junk"])).toEqual(["2 webhooks", "schedule"]);
    expect(triggerKinds(undefined)).toEqual([]);
  });
});
