import { describe, expect, it } from "vitest";
import { absolute, describeRange, formatTime, fromLocalInput, parseDuration, resolveTime, toLocalInput } from "./time";

describe("time", () => {
  it("parses durations", () => {
    expect(parseDuration("90")).toBe(90);
    expect(parseDuration("1h30m")).toBe(5400);
    expect(parseDuration("7d")).toBe(604800);
    expect(parseDuration("soon")).toBeNull();
  });

  it("resolves relative and absolute bounds", () => {
    expect(resolveTime("now-1h", 10_000)).toBe(6400);
    expect(resolveTime("now", 10_000)).toBe(10_000);
    expect(resolveTime("2026-01-02T03:04:05Z", 0)).toBe(Date.UTC(2026, 0, 2, 3, 4, 5) / 1000);
    expect(resolveTime("1767225600000", 0)).toBe(1767225600);
    expect(resolveTime("garbage", 0)).toBeNull();
  });

  it("formats in the chosen zone", () => {
    const t = Date.UTC(2026, 0, 2, 3, 4, 5) / 1000;
    expect(formatTime(t, "UTC")).toBe("2026-01-02 03:04:05");
    expect(formatTime(t, "Asia/Tokyo")).toBe("2026-01-02 12:04:05");
    expect(absolute(t)).toBe("2026-01-02T03:04:05Z");
  });

  it("reads datetime-local inputs in the zone", () => {
    const t = Date.UTC(2026, 5, 1, 12, 30) / 1000;
    for (const zone of ["UTC", "Asia/Kolkata", "America/New_York"]) {
      expect(fromLocalInput(toLocalInput(t, zone), zone)).toBe(t);
    }
  });

  it("describes ranges", () => {
    expect(describeRange("now-6h", "now", "UTC")).toBe("Last 6 hours");
    expect(describeRange("2026-01-02T00:00:00Z", "2026-01-02T01:00:00Z", "UTC")).toBe("2026-01-02 00:00:00 – 2026-01-02 01:00:00");
  });
});
