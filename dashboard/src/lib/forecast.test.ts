import { describe, expect, it } from "vitest";
import { chartEnd, etaText, forecastUrl, intervalText, labelFilters, overlay } from "./forecast";
import { sample } from "../test/forecastSample";

const NOW = 1_800_000_000;
const DAY = 86400;

describe("forecast overlays", () => {
  it("draws the projection, the threshold, the crossing and its interval", () => {
    const o = overlay(sample(), 90, (t) => `T${t}`);
    expect(o.projection).toHaveLength(3);
    expect(o.thresholds).toEqual([{ value: 90, label: "threshold" }]);
    expect(o.markers).toEqual([
      { t: NOW + 6 * DAY, kind: "forecast", label: `expected to reach 90 (between T${NOW + 5 * DAY} and T${NOW + 7 * DAY})` },
    ]);
    expect(o.regions).toEqual([{ from: NOW + 5 * DAY, to: NOW + 7 * DAY, label: "crossing interval" }]);
    // an open-ended interval is shaded to the end of the chart; the projection is cut there
    const open = overlay(sample({ interval: { earliest: null, latest: null, earliest_ts: NOW + 5 * DAY, latest_ts: null } }), 90, String, NOW + 6 * DAY);
    expect(open.regions[0].to).toBe(NOW + 6 * DAY);
    expect(open.projection.map((p) => p[0])).toEqual([NOW, NOW + 3 * DAY]);
    expect(open.markers[0].label).toContain("and never)");
  });

  it("ends the chart a little past the crossing", () => {
    // latest 7 d: 7 + 15 % = 8.05 days ahead; at least a quarter of 14 days of history
    expect(chartEnd(sample(), NOW, 14 * DAY)).toBeCloseTo(NOW + 8.05 * DAY);
    expect(chartEnd(sample({ crossing_ts: NOW + DAY, interval: { earliest: null, latest: null, earliest_ts: null, latest_ts: null } }), NOW, 14 * DAY)).toBe(NOW + 3.5 * DAY);
    expect(chartEnd(sample({ status: "not_crossing", crossing_ts: null }), NOW, 14 * DAY)).toBe(NOW + 7 * DAY);
  });

  it("draws no crossing when none is expected", () => {
    const o = overlay(sample({ status: "not_crossing", crossing_ts: null, eta_seconds: null }), 90, String);
    expect(o.markers).toEqual([]);
    expect(o.regions).toEqual([]);
  });

  it("says when, in words", () => {
    expect(etaText(sample())).toBe("in 6.0 days");
    expect(etaText(sample({ eta_seconds: 15 * DAY }))).toBe("in 15 days");
    expect(etaText(sample({ eta_seconds: 5 * 3600 }))).toBe("in 5 hours");
    expect(etaText(sample({ status: "crossed", eta_seconds: 0 }))).toBe("now (crossed)");
    expect(etaText(sample({ status: "not_crossing", eta_seconds: null }))).toBe("—");
    expect(intervalText(sample(), NOW)).toBe("5.0–7.0 days");
    expect(intervalText(sample({ interval: { earliest: null, latest: null, earliest_ts: NOW + DAY, latest_ts: null } }), NOW)).toBe(
      "at least 1.0 days, possibly never",
    );
  });

  it("builds the API URL", () => {
    const url = forecastUrl({ metric: "disk.used_percent", threshold: "90", direction: "above", horizon: "7d", lookback: "14d", host: "web-1", labels: labelFilters({ mount: "/" }) });
    expect(url).toBe("/api/v1/forecast?metric=disk.used_percent&threshold=90&horizon=7d&lookback=14d&host=web-1&labels=mount%3D%2F&limit=200");
    expect(forecastUrl({ metric: "m", threshold: "1", direction: "below", horizon: "30d", lookback: "7d", within: true })).toContain("direction=below");
  });
});
