import { describe, expect, it } from "vitest";
import { formatDuration } from "../time";
import { relativeTime, runDuration, shortId } from "./format";

const NOW = Date.parse("2026-03-01T12:00:00Z");

describe("relativeTime", () => {
  it("says how long ago, in the largest whole unit", () => {
    expect(relativeTime("2026-03-01T11:57:00Z", NOW)).toBe("3 minutes ago");
    expect(relativeTime("2026-03-01T09:00:00Z", NOW)).toBe("3 hours ago");
    expect(relativeTime("2026-02-27T12:00:00Z", NOW)).toBe("2 days ago");
    expect(relativeTime("2026-03-01T11:59:30Z", NOW)).toBe("30 seconds ago");
  });

  it("calls the last few seconds just now, and handles the future and garbage", () => {
    expect(relativeTime("2026-03-01T11:59:55Z", NOW)).toBe("just now");
    expect(relativeTime("2026-03-01T12:05:00Z", NOW)).toBe("in 5 minutes");
    expect(relativeTime("not a date", NOW)).toBe("unknown");
  });
});

describe("formatDuration", () => {
  it("picks a unit by size", () => {
    expect(formatDuration(850)).toBe("850 ms");
    expect(formatDuration(1234)).toBe("1.2 s");
    expect(formatDuration(42_000)).toBe("42 s");
    expect(formatDuration(245_000)).toBe("4m 05s");
    expect(formatDuration(7_380_000)).toBe("2h 03m");
  });

  it("shows a dash for nonsense", () => {
    expect(formatDuration(-1)).toBe("—");
    expect(formatDuration(Number.NaN)).toBe("—");
  });
});

describe("runDuration", () => {
  it("is end minus start, or now minus start while running, or null before start", () => {
    expect(runDuration({ start_time: "2026-03-01T11:00:00Z", end_time: "2026-03-01T11:00:02Z" }, NOW)).toBe(2000);
    expect(runDuration({ start_time: "2026-03-01T11:59:00Z", end_time: null }, NOW)).toBe(60_000);
    expect(runDuration({ start_time: null, end_time: null }, NOW)).toBeNull();
  });
});

describe("shortId", () => {
  it("keeps the first eight characters", () => {
    expect(shortId("0123456789abcdef")).toBe("01234567");
    expect(shortId("abc")).toBe("abc");
  });
});
