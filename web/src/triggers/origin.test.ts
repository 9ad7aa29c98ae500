import { describe, expect, it } from "vitest";
import { isTriggerType, originText, runOrigin } from "./origin";

describe("runOrigin", () => {
  it("reads each trigger shape the server records", () => {
    expect(originText(runOrigin({ type: "manual" }))).toBe("manual");
    const schedule = runOrigin({ type: "schedule", key: "nightly", slot: "2026-12-03T07:40:00Z" });
    expect(schedule).toMatchObject({ type: "schedule", slot: "2026-12-03T07:40:00Z", scheduleKey: "nightly" });
    expect(originText(schedule)).toBe("schedule 2026-12-03T07:40:00Z");
    expect(originText(schedule, () => "at seven")).toBe("schedule at seven");
    const hook = runOrigin({ type: "webhook", path: "new-signup", method: "PUT" });
    expect(hook?.request).toBe("PUT /hooks/new-signup");
    expect(originText(hook)).toBe("webhook PUT /hooks/new-signup");
    const error = runOrigin({ type: "error", execution_id: "3f2a1b2c-9d8e", workflow_id: "w1" });
    expect(error).toMatchObject({ failedRun: "3f2a1b2c-9d8e", failedWorkflow: "w1" });
    expect(originText(error)).toBe("error of 3f2a1b2c");
  });

  it("takes no trigger, a malformed one, and types it does not know", () => {
    expect(runOrigin(null)).toBeNull();
    expect(runOrigin({ slot: "x" })).toBeNull();
    expect(originText(null)).toBe("unknown");
    expect(originText(runOrigin({ type: "email", from: "a@b" }))).toBe("email");
    // A webhook without a path, a schedule without a slot: the type alone.
    expect(originText(runOrigin({ type: "webhook" }))).toBe("webhook");
    expect(originText(runOrigin({ type: "schedule" }))).toBe("schedule");
  });

  it("knows the types the lists filter by", () => {
    expect(isTriggerType("webhook")).toBe(true);
    expect(isTriggerType("nope")).toBe(false);
    expect(isTriggerType(null)).toBe(false);
  });
});
